"""``/why`` and the "Why?" button, through the real Application and the fake Bot API server."""

from __future__ import annotations

import io
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import nothotdog.bot.pipeline
from nothotdog.bot import replies
from nothotdog.bot.app import pipeline_of
from nothotdog.contract.layout import MB
from nothotdog.contract.runtime import OnnxModel
from tests.bot.conftest import StartBot
from tests.bot.harness import until
from tests.bot.test_access import _no_file_writes as no_file_writes
from tests.bot.test_documents import BIG, SIDE, fetched, rgb_png
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, RED, RED_TEXT, encode, solid

GROUP = FakeTelegram.group_chat()
SIZE = (640, 480)
PATCH = (400, 0, 640, 200)  # left, top, right, bottom: a red (hot dog) patch on green
# Each answer here runs the model once or twice; generous on a machine busy with other work.
WAIT = 30.0


def patch_photo() -> bytes:
    image = Image.new("RGB", SIZE, GREEN)
    image.paste(RED, PATCH)
    return encode(image, "JPEG", quality=92)


def luminance(picture: Image.Image, box: tuple[int, int, int, int]) -> float:
    return float(np.asarray(picture.convert("L").crop(box), np.float32).mean())


async def sent_pictures(telegram: FakeTelegram, count: int = 1) -> list[dict[str, Any]]:
    """The bot's sendPhoto messages, once ``count`` have come and nothing else follows."""
    await telegram.wait_until(lambda: len(pictures(telegram)) >= count, WAIT)
    await telegram.quiet(0.3)
    return pictures(telegram)


def pictures(telegram: FakeTelegram) -> list[dict[str, Any]]:
    return [m for m in telegram.sent if "photo" in m]


def picture_of(message: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(message["params"]["photo"]))


@pytest.mark.parametrize("chat", [FakeTelegram.private_chat(), GROUP], ids=["private", "group"])
async def test_why_as_a_reply_to_a_photo_sends_one_picture(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel,
    chat: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    threads: list[str] = []
    real = nothotdog.bot.pipeline.draw_jpeg

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(nothotdog.bot.pipeline, "draw_jpeg", spy)
    await start_bot(model=heatmap_model)
    photo = telegram.push_photo(patch_photo(), chat, width=SIZE[0], height=SIZE[1], user_id=7)
    (verdict,) = await telegram.replies_to(photo, timeout=WAIT)
    assert verdict["text"] == "🚫 Not hotdog (76%)"
    telegram.push_command("/why", chat, reply_to=photo, user_id=8)
    (sent,) = await sent_pictures(telegram)
    assert sent["reply_to_message_id"] == photo["message_id"]
    assert sent["chat"]["id"] == chat["id"]
    first, second = sent["caption"].splitlines()
    assert first == "🚫 Not hotdog · P(hotdog) = 24%"  # the same verdict
    assert second.startswith("Bright = what looked most like hot dog")
    picture = picture_of(sent)
    assert picture.size == SIZE  # the photo's own aspect, not the model's square
    inside = luminance(picture, (440, 20, 620, 180))
    outside = luminance(picture, (20, 260, 360, 460))
    assert inside > 1.5 * outside  # the hottest region is the red patch
    assert threads and all(name.startswith("decode") for name in threads)  # decode threads
    assert len(telegram.calls_to("sendPhoto")) == 1


async def test_why_on_an_image_document(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    await start_bot(model=heatmap_model)
    document = telegram.push_document(solid(RED, fmt="PNG"), GROUP, file_name="x.png")
    telegram.push_command("/why", GROUP, reply_to=document)
    (sent,) = await sent_pictures(telegram)
    assert sent["reply_to_message_id"] == document["message_id"]
    assert sent["caption"].startswith("🌭 Hotdog! · P(hotdog) = 97%")


async def test_why_with_nothing_to_explain_gets_the_usage_line(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    await start_bot(model=heatmap_model)
    alone = telegram.push_command("/why")
    assert await telegram.reply_text(alone) == replies.why_usage()
    text = telegram.push_text("look at this", GROUP)
    on_text = telegram.push_command("/why", GROUP, reply_to=text)
    assert await telegram.reply_text(on_text) == replies.why_usage()
    pdf = telegram.push_document(b"%PDF-1.4", GROUP, file_name="a.pdf", mime_type="application/pdf")
    on_pdf = telegram.push_command("/why", GROUP, reply_to=pdf)
    assert await telegram.reply_text(on_pdf) == replies.not_an_image()
    await telegram.quiet(0.2)
    assert not telegram.calls_to("sendPhoto") and not telegram.calls_to("getFile")


def button_data(message: dict) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row]


async def test_a_model_without_heatmap_cannot_explain_itself(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(show_why_button=True)  # the tiny model as exported before the heatmap
    telegram.can_read_all_group_messages = False  # the group photo itself is not seen
    photo = telegram.push_photo(solid(RED), GROUP)
    telegram.push_command("/why", GROUP, reply_to=photo)
    assert await telegram.reply_text(photo, WAIT) == replies.cant_explain()  # to the photo
    private = telegram.push_photo(solid(RED))
    (verdict,) = await telegram.replies_to(private, timeout=WAIT)
    assert verdict["text"] == RED_TEXT and "why" not in button_data(verdict)  # no useless button
    await telegram.quiet(0.2)
    assert not telegram.calls_to("sendPhoto")
    assert len(telegram.calls_to("getFile")) == 1  # the private photo's verdict only


async def test_the_why_button_sends_the_picture_as_a_reply_to_the_verdict(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    await start_bot(model=heatmap_model, show_why_button=True)
    photo = telegram.push_photo(solid(RED), GROUP)
    (verdict,) = await telegram.replies_to(photo, timeout=WAIT)
    assert verdict["text"] == RED_TEXT
    *_, row = verdict["reply_markup"]["inline_keyboard"]  # under the feedback buttons
    assert row == [{"text": "Why?", "callback_data": "why"}]
    telegram.push_callback_query(verdict, "why", user_id=9)
    (sent,) = await sent_pictures(telegram)
    assert sent["reply_to_message_id"] == verdict["message_id"]
    assert sent["caption"].startswith("🌭 Hotdog! · P(hotdog) = 97%")
    (answer,) = telegram.calls_to("answerCallbackQuery")
    assert answer.params["callback_query_id"] == "Q1"
    assert picture_of(sent).size == (640, 480)


async def test_the_button_is_off_by_default(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    await start_bot(model=heatmap_model)
    photo = telegram.push_photo(solid(RED))
    (verdict,) = await telegram.replies_to(photo, timeout=WAIT)
    assert verdict["text"] == RED_TEXT and "why" not in button_data(verdict)


async def test_the_button_without_its_photo_says_so(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    await start_bot(model=heatmap_model, show_why_button=True)
    photo = telegram.push_photo(solid(RED))
    (verdict,) = await telegram.replies_to(photo, timeout=WAIT)
    del telegram.messages[(verdict["chat"]["id"], verdict["message_id"])]["reply_to_message"]
    telegram.push_callback_query(verdict, "why")
    (gone,) = await telegram.replies_to(verdict, timeout=WAIT)
    assert gone["text"] == replies.photo_gone()
    assert telegram.calls_to("answerCallbackQuery")


async def test_why_waits_its_turn_like_a_verdict(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    """One place in flight: while a /hotdog download holds it, /why waits, then draws."""
    await start_bot(model=heatmap_model, queue_size=1)
    telegram.can_read_all_group_messages = False
    photo = telegram.push_photo(solid(RED), GROUP)
    telegram.slow("getFile", seconds=3.0)
    hotdog = telegram.push_command("/hotdog", GROUP, reply_to=photo)
    await telegram.wait_until(lambda: bool(telegram.calls_to("getFile")))
    telegram.push_command("/why", GROUP, reply_to=photo)
    answers = await telegram.replies_to(photo, count=2, timeout=WAIT)
    assert answers[0]["text"] == RED_TEXT and "photo" in answers[1]
    assert hotdog["update_id"] is not None


async def test_why_writes_nothing_to_disk(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    workdir, scratch = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    await start_bot(model=heatmap_model, show_why_button=True)
    with no_file_writes() as writes:
        photo = telegram.push_photo(patch_photo(), GROUP)
        (verdict,) = await telegram.replies_to(photo, timeout=WAIT)
        telegram.push_command("/why", GROUP, reply_to=photo)
        telegram.push_callback_query(verdict, "why")
        await sent_pictures(telegram, count=2)
    assert writes == []
    assert list(workdir.iterdir()) == [] and list(scratch.iterdir()) == []


# --- the same admission and byte budget as a verdict --------------------------------------------


async def test_why_is_admitted_on_its_declared_size_and_waits_undownloaded(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    """24 MB budget, files may hold 18 MB: while a 10 MB file is in flight, /why on an 8 MB
    file waits in line without downloading it; then it is drawn, and every byte given back."""
    app = await start_bot(model=heatmap_model, memory_budget_mb=24, max_file_mb=10)
    telegram.can_read_all_group_messages = False  # only /why sees the group's file
    telegram.slow("getFile", seconds=5)
    first = telegram.push_document(solid(RED, fmt="PNG"), file_name="a.png", declared_size=10 * MB)
    await telegram.wait_until(lambda: len(telegram.calls_to("getFile")) == 1)
    document = telegram.push_document(solid(RED, fmt="PNG"), GROUP, file_name="b.png",
                                      declared_size=8 * MB)
    telegram.push_command("/why", GROUP, reply_to=document)
    await until(lambda: pipeline_of(app).admission.waiting == 1)  # no API call signals it
    assert len(telegram.calls_to("getFile")) == 1 and not telegram.calls_to("sendPhoto")
    assert await telegram.reply_text(first, timeout=30) == RED_TEXT
    (sent,) = await sent_pictures(telegram)
    assert sent["reply_to_message_id"] == document["message_id"]
    budget = pipeline_of(app).admission
    assert budget.used == 0 and budget.peak <= budget.total


async def test_why_on_a_picture_too_large_to_decode_is_refused_from_its_header(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    app = await start_bot(model=heatmap_model)
    document = telegram.push_document(rgb_png(), GROUP, file_name="huge.png")
    telegram.push_command("/why", GROUP, reply_to=document)
    replies_now = await telegram.replies_to(document, count=2, timeout=30)
    too_large = replies.unreadable(f"the image is too large ({SIDE}x{SIDE} pixels)")
    assert [m["text"] for m in replies_now] == [too_large, too_large]  # verdict and /why
    assert not telegram.calls_to("sendPhoto")
    assert pipeline_of(app).admission.used == 0


async def test_why_on_a_big_file_draws_on_its_preview(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    await start_bot(model=heatmap_model)
    telegram.can_read_all_group_messages = False
    document = telegram.push_document(solid(GREEN), GROUP, file_name="scan.png",
                                      declared_size=BIG, thumbnail=solid(RED, size=(320, 240)))
    telegram.push_command("/why", GROUP, reply_to=document)
    (sent,) = await sent_pictures(telegram)
    assert sent["caption"].startswith("🌭 Hotdog! · P(hotdog) = 97%")
    assert sent["caption"].endswith(replies.from_preview("", 10).strip())
    assert picture_of(sent).size == (320, 240)
    assert fetched(telegram) == {document["document"]["thumbnail"]["file_id"]}
