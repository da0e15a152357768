"""Hostile and odd files through the real bot: each gets a clear answer, then life goes on.

Every file of ``tests.badfiles`` is sent four ways (photo and document, private chat and
group); each gets the answer its kind calls for, or silence for a non-image document in a
group, and the next normal photo in the same chat is still answered correctly.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from telegram.ext import Application

from nothotdog.bot import replies
from nothotdog.bot.app import pipeline_of
from nothotdog.bot.classifier import load_model
from nothotdog.bot.intake import is_taking
from tests.badfiles import BOMB_SIDE, BadFile, Expect, corpus, exif_rotated, heic, heic_supported
from tests.bot.conftest import StartBot
from tests.bot.memory import MB, peak_memory
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid
from tests.tinymodel import build_tiny_model

HOTDOG, NOT_HOTDOG = "🌭 Hotdog!", "🚫 Not hotdog"
VARIANTS = [("photo", "private"), ("photo", "group"), ("document", "private"),
            ("document", "group")]
# A decoded 20000x20000 bomb needs 400 MB (palette) to 1.2 GB (RGB); refusing it from its
# header must cost next to nothing. Bounds with room for the allocator's noise:
BOMB_RSS_BOUND_MB = 32
BOMB_PYTHON_BOUND_MB = 8


@functools.cache
def _by_name() -> dict[str, BadFile]:
    return {f.name: f for f in corpus()}


NAMES = list(_by_name())


def expected_answer(bad: BadFile, as_photo: bool, in_group: bool) -> str | None:
    """The exact reply (None: silence), or for verdicts the label it starts with."""
    if bad.expect is Expect.TOO_LARGE:
        return replies.too_large(len(bad.data))
    if bad.expect is Expect.NOT_AN_IMAGE and not as_photo:
        return None if in_group else replies.not_an_image()
    if bad.expect in (Expect.UNREADABLE, Expect.NOT_AN_IMAGE):
        # Sent "as a photo" a non-image can only be read and found wanting.
        return replies.unreadable(bad.reason)
    return {Expect.HOTDOG: HOTDOG, Expect.NOT_HOTDOG: NOT_HOTDOG}.get(bad.expect, "")


def _push(api: FakeTelegram, bad: BadFile, kind: str, chat: dict[str, Any]) -> dict[str, Any]:
    if kind == "photo":
        return api.push_photo(bad.data, chat, width=1280, height=960)
    return api.push_document(bad.data, chat, file_name=bad.file_name, mime_type=bad.mime_type)


def _file_ids(message: dict[str, Any]) -> set[str]:
    if "photo" in message:
        return {size["file_id"] for size in message["photo"]}
    return {message["document"]["file_id"]}


async def _one_way(
    api: FakeTelegram, bad: BadFile, kind: str, where: str, chat_id: int, follow_red: bool
) -> None:
    chat = (FakeTelegram.group_chat(-chat_id) if where == "group"
            else FakeTelegram.private_chat(chat_id))
    label = f"{bad.name} as {kind} in {where}"
    expected = expected_answer(bad, kind == "photo", where == "group")
    message = _push(api, bad, kind, chat)
    if expected is not None:
        text = await api.reply_text(message, timeout=15)
        if bad.expect is Expect.NEUTRAL:  # grey: the redness model sits at exactly 50%
            assert text.startswith((HOTDOG, NOT_HOTDOG)) and text.endswith("(50%)"), label
        elif bad.expect in (Expect.HOTDOG, Expect.NOT_HOTDOG):
            assert text.startswith(expected), f"{label}: {text!r}"
        else:
            assert text == expected, label
    color, verdict = (RED, RED_TEXT) if follow_red else (GREEN, GREEN_TEXT)
    after = api.push_photo(solid(color), chat)
    assert await api.reply_text(after, timeout=15) == verdict, f"after {label}"
    await api.quiet(0.1)
    assert len(api.replies_now(message)) == (0 if expected is None else 1), label
    assert len(api.replies_now(after)) == 1, f"after {label}"
    fetched = {c.params.get("file_id") for c in api.calls_to("getFile")}
    if expected is None or bad.expect is Expect.TOO_LARGE:  # never downloaded
        assert not fetched & _file_ids(message), f"{label} was fetched"
    if bad.expect is Expect.TOO_LARGE:
        paths = {api.files[f].file_path for f in _file_ids(message)}
        assert not paths & {c.params["file_path"] for c in api.calls_to("file")}


@pytest.mark.parametrize("name", NAMES)
async def test_corpus_file_gets_a_clear_answer_and_the_bot_carries_on(
    telegram: FakeTelegram, bot: Application, name: str
) -> None:
    bad = _by_name()[name]
    base = 30_000 + 10 * NAMES.index(name)
    await asyncio.gather(*(
        _one_way(telegram, bad, kind, where, base + i, follow_red=i % 2 == 0)
        for i, (kind, where) in enumerate(VARIANTS)
    ))
    assert is_taking(bot)
    # Nothing unexpected reached the error handler: no "something went wrong" anywhere.
    assert all(m["text"] != replies.failed() for m in telegram.sent)


def test_corpus_covers_every_kind_of_bad_file() -> None:
    wanted = {"zero-bytes", "truncated-jpeg", "corrupt-png", "text-named-jpg", "html-page", "pdf",
              "one-pixel", "png-bomb-20000", "40mb-file", "animated-gif", "animated-webp",
              "cmyk-jpeg", "16-bit-rgb-png", "16-bit-gray-png", "grayscale-jpeg",
              "palette-transparency", "exif-rotated", "svg", "heic"}
    assert wanted <= set(NAMES)
    assert len(_by_name()["40mb-file"].data) == 40 * MB
    assert len(_by_name()["png-bomb-20000"].data) < 100_000  # tiny on the wire


async def test_heic_is_really_decoded(telegram: FakeTelegram, bot: Application) -> None:
    """A red and a green HEIC get opposite verdicts: only a real decode can tell them apart.
    The dev extra installs pillow-heif, so without it this fails rather than skips."""
    assert heic_supported(), "pillow-heif (in the dev extra) is not installed"
    for colour, answer in ((RED, HOTDOG), (GREEN, NOT_HOTDOG)):
        message = telegram.push_document(heic(colour), file_name="iphone.heic",
                                         mime_type="image/heic")
        assert (await telegram.reply_text(message)).startswith(answer), colour


async def test_exif_rotated_photo_is_judged_upright(
    telegram: FakeTelegram, start_bot: StartBot, tmp_path: Path
) -> None:
    """A model that looks at the top half only answers by orientation: upright, the top half
    of ``exif_rotated`` is mostly red; as stored (the tag left out) it is mostly green."""
    model = load_model(build_tiny_model(tmp_path / "top.onnx", top_half=True), onnx_threads=1)
    await start_bot(model=model)
    tagged = [telegram.push_photo(exif_rotated()),
              telegram.push_document(exif_rotated(), file_name="r.jpg", mime_type="image/jpeg")]
    untagged = telegram.push_photo(exif_rotated(orientation=False))
    for message in tagged:
        assert (await telegram.reply_text(message)).startswith(HOTDOG)
    assert (await telegram.reply_text(untagged)).startswith(NOT_HOTDOG)


async def test_decompression_bomb_is_refused_within_a_memory_bound(
    telegram: FakeTelegram, bot: Application
) -> None:
    bomb = _by_name()["png-bomb-20000"]
    # Warm up first, so lazily built things (thread pools, onnxruntime arenas) are not counted.
    assert await telegram.reply_text(telegram.push_photo(solid(RED))) == RED_TEXT
    with peak_memory(trace_python=True) as peak:
        sent = [telegram.push_photo(bomb.data),
                telegram.push_document(bomb.data, file_name="b.png")]
        for message in sent:
            assert await telegram.reply_text(message) == replies.unreadable(bomb.reason)
    print(f"\n{BOMB_SIDE}x{BOMB_SIDE} PNG bomb ({len(bomb.data)} bytes) as photo and document: "
          f"peak RSS growth {peak.rss_growth_mb:.1f} MB (bound {BOMB_RSS_BOUND_MB} MB), "
          f"Python peak {peak.python_peak_mb:.1f} MB (bound {BOMB_PYTHON_BOUND_MB} MB)")
    assert peak.rss_growth_mb < BOMB_RSS_BOUND_MB
    with peak_memory() as control:  # the meter does see memory that is really touched
        np.ones(BOMB_RSS_BOUND_MB * 2 * MB, dtype=np.uint8)
    assert control.rss_growth_mb > BOMB_RSS_BOUND_MB
    assert peak.python_peak_mb < BOMB_PYTHON_BOUND_MB
    assert len(telegram.calls_to("file")) == 3  # it was downloaded (50 KB), never decoded
    assert pipeline_of(bot).classified == 1  # only the warm-up photo reached the model
