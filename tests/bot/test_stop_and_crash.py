"""A deploy or a crash loses no photo: the real ``python -m nothotdog.bot`` process, stopped
(SIGTERM) or killed (SIGKILL) mid-burst, then a new process; the fake Bot API confirms
updates as Telegram does (getUpdates' offset; a webhook POST's 2xx, delivered again until
then). Each photo must end with its verdict: once after a stop, at least once after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from nothotdog.bot.answered import answered
from tests.bot.harness import bot_process, bot_process_env, until
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid
from tests.ports import free_port

PHOTOS = 200
STOP_AFTER = PHOTOS // 10  # verdicts sent before the signal
MAX_TWICE = 5  # of 200, after a SIGKILL: 1 measured (the answer sent as its id was being written)
WAIT_S = 45.0  # for every photo to be answered, or a stopped process to exit
COLOURS = [(RED, RED_TEXT), (GREEN, GREEN_TEXT)]


def burst(telegram: FakeTelegram) -> list[dict[str, Any]]:
    """``PHOTOS`` photos from as many private chats, all at once."""
    images = [solid(colour, size=(320, 240)) for colour, _ in COLOURS]
    chats = [telegram.private_chat(20_000 + i) for i in range(PHOTOS)]
    return [telegram.push_photo(images[i % 2], chat, width=320, height=240)
            for i, chat in enumerate(chats)]  # fmt: skip


def outcome(telegram: FakeTelegram, messages: list[dict[str, Any]]) -> tuple[int, int]:
    """(photos never answered, photos answered more than once); every answer must be the
    photo's verdict."""
    unanswered = twice = 0
    for i, message in enumerate(messages):
        texts = [m["text"] for m in telegram.replies_now(message)]
        assert set(texts) <= {COLOURS[i % 2][1]}, (i, texts)
        unanswered += not texts
        twice += len(texts) > 1
    return unanswered, twice


@contextlib.asynccontextmanager
async def bot(
    telegram: FakeTelegram, model: Path, folder: Path, name: str, **extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """One bot process, its output in ``folder/name.log``; killed on the way out if need be."""
    env = bot_process_env(telegram, model, **{"LOG_LEVEL": "WARNING", "ONNX_THREADS": "1",
                                              **extra})  # fmt: skip
    with (folder / f"{name}.log").open("wb") as log:
        proc = await bot_process(env, folder, log)
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def stop_mid_burst(
    telegram: FakeTelegram, model: Path, folder: Path, sig: int, **extra: str
) -> tuple[int, int, int]:
    """The burst to a first process, ``sig`` once STOP_AFTER verdicts are out, the rest to a
    second; (verdicts from the first, unanswered, answered twice)."""
    async with bot(telegram, model, folder, "first", **extra) as first:
        messages = burst(telegram)
        await telegram.wait_until(lambda: len(telegram.sent) >= STOP_AFTER, timeout=WAIT_S)
        first.send_signal(sig)
        await asyncio.wait_for(first.wait(), timeout=WAIT_S)
    log = (folder / "first.log").read_text()
    assert first.returncode == (0 if sig == signal.SIGTERM else -sig), log
    by_first = len(telegram.sent)
    async with bot(telegram, model, folder, "second", **extra) as second:
        await telegram.wait_until(
            lambda: all(telegram.replies_now(m) for m in messages), timeout=WAIT_S
        )
        await telegram.quiet(0.5)  # a second answer would come now
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), timeout=WAIT_S) == 0
    return by_first, *outcome(telegram, messages)


def report(mode: str, sig: int, by_first: int, unanswered: int, twice: int) -> None:
    print(f"{mode}, {signal.Signals(sig).name} after {STOP_AFTER} verdicts: the first process "
          f"answered {by_first}, the second the rest; {PHOTOS - unanswered} of {PHOTOS} photos "
          f"have their verdict, {unanswered} unanswered, {twice} answered twice")  # fmt: skip


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_stop_or_a_crash_loses_no_photo(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path, mode: str, sig: int
) -> None:
    """A stop finishes what it took and the next process answers the rest, each photo once;
    after a crash every photo is answered, a few twice. In webhook mode Telegram delivers
    again what got no 2xx, here to the next process on the same port."""
    webhook: dict[str, str] = {}
    if mode == "webhook":
        port = free_port()
        webhook = {"WEBHOOK_URL": f"http://127.0.0.1:{port}/hook", "WEBHOOK_PORT": str(port),
                   "WEBHOOK_SECRET": "stop-and-crash"}  # fmt: skip
    by_first, unanswered, twice = await stop_mid_burst(
        telegram, tiny_model_path, tmp_path, sig, **webhook
    )
    report(mode, sig, by_first, unanswered, twice)
    assert unanswered == 0
    if sig == signal.SIGTERM:
        assert twice == 0
        assert by_first > STOP_AFTER  # it finished what it had taken before it exited
    else:
        assert twice <= MAX_TWICE


def kept_ids(url: str) -> set[int]:
    """The update ids in the bot's table of answered, unconfirmed updates."""
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return set(db.scalars(select(answered.c.update_id)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("feedback", ["true", "false"])
async def test_a_crash_answers_again_only_without_a_database(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path, feedback: str
) -> None:
    """Photo A hangs in getFile while photo B, after it, is answered: B cannot be confirmed
    (A is older and unfinished). Killed then, the next process answers A; B again only when
    there is no database to have kept B's update id in (FEEDBACK=false)."""
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    extra = {"DATABASE_URL": url, "FEEDBACK": feedback}
    telegram.slow("getFile", seconds=8)  # A's: the kill comes long before (B takes ~1 s)
    async with bot(telegram, tiny_model_path, tmp_path, "first", **extra) as first:
        a = telegram.push_photo(solid(RED), telegram.private_chat(1))
        await telegram.wait_until(lambda: len(telegram.calls_to("getFile")) == 1)
        b = telegram.push_photo(solid(GREEN), telegram.private_chat(2))
        await telegram.replies_to(b)
        if feedback == "true":
            await until(lambda: b["update_id"] in kept_ids(url))
        first.kill()
        await first.wait()
    assert not telegram.replies_now(a)
    async with bot(telegram, tiny_model_path, tmp_path, "second", **extra) as second:
        await telegram.replies_to(a)
        await telegram.quiet(0.5)  # B's second answer would come now
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), timeout=WAIT_S) == 0
    assert [m["text"] for m in telegram.replies_now(a)] == [RED_TEXT]
    assert len(telegram.replies_now(b)) == (1 if feedback == "true" else 2)
    if feedback == "true":
        assert kept_ids(url) == set()  # confirmed at the stop, so no longer kept
