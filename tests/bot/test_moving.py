"""Stickers, GIFs and videos, through the real bot against the fake Bot API server: a static
sticker judged like a photo, everything that moves judged on the preview Telegram sends with
it (the video itself is never downloaded), one without a preview told so, each answered once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from telegram.ext import Application

from nothotdog.bot import replies
from nothotdog.bot.classifier import load_model
from nothotdog.bot.feedback import FeedbackStore, votes
from nothotdog.bot.settings import Settings
from nothotdog.contract import ModelSpec
from tests.bot.conftest import StartBot
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid
from tests.tinymodel import build_tiny_model

GROUP = FakeTelegram.group_chat(-100777)
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(2048)  # not an image: must never be decoded
TGS = b"\x1f\x8b" + bytes(512)  # a gzipped Lottie animation, neither
RED_THUMB = solid(RED, size=(320, 180))
GREEN_THUMB = solid(GREEN, size=(320, 180))


def fetched(api: FakeTelegram) -> set[str]:
    return {str(c.params["file_id"]) for c in api.calls_to("getFile")}


def thumb_id(message: dict[str, Any], kind: str) -> str:
    return message[kind]["thumbnail"]["file_id"]


async def test_each_kind_gets_one_verdict_from_the_right_picture(
    telegram: FakeTelegram, bot: Application
) -> None:
    static = telegram.push_sticker(solid(RED, size=(512, 512), fmt="WEBP"),
                                   thumbnail=GREEN_THUMB)  # fmt: skip
    gif = telegram.push_animation(MP4, thumbnail=RED_THUMB)
    note = telegram.push_video_note(MP4, thumbnail=GREEN_THUMB)
    video_sticker = telegram.push_sticker(b"\x1aE\xdf\xa3" + bytes(512), video=True,
                                          thumbnail=RED_THUMB)  # fmt: skip
    animated_sticker = telegram.push_sticker(TGS, animated=True, thumbnail=GREEN_THUMB)
    video = telegram.push_video(MP4, thumbnail=RED_THUMB)
    expected = [(static, RED_TEXT), (gif, RED_TEXT), (note, GREEN_TEXT),
                (video_sticker, RED_TEXT), (animated_sticker, GREEN_TEXT), (video, RED_TEXT)]
    for message, text in expected:
        assert await telegram.reply_text(message) == text
    await telegram.quiet()
    assert [len(telegram.replies_now(m)) for m, _text in expected] == [1] * len(expected)
    assert fetched(telegram) == {
        static["sticker"]["file_id"], thumb_id(gif, "animation"), thumb_id(note, "video_note"),
        thumb_id(video_sticker, "sticker"), thumb_id(animated_sticker, "sticker"),
        thumb_id(video, "video"),
    }  # the static sticker's own WebP; for the rest, never the video


async def test_without_a_preview_the_answer_says_so_and_nothing_is_downloaded(
    telegram: FakeTelegram, bot: Application
) -> None:
    messages = [telegram.push_animation(MP4), telegram.push_video_note(MP4),
                telegram.push_sticker(TGS, animated=True), telegram.push_video(MP4)]  # fmt: skip
    for message in messages:
        assert await telegram.reply_text(message) == replies.no_preview()
    await telegram.quiet()
    assert all(len(telegram.replies_now(m)) == 1 for m in messages)
    assert telegram.calls_to("getFile") == []


async def test_in_a_group_with_privacy_mode_on_hotdog_and_why_work_as_replies(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    telegram.can_read_all_group_messages = False
    await start_bot()
    gif = telegram.push_animation(MP4, GROUP, thumbnail=GREEN_THUMB)
    sticker = telegram.push_sticker(solid(RED, size=(512, 512), fmt="WEBP"), GROUP)
    bare_video = telegram.push_video(MP4, GROUP)
    assert gif["update_id"] is None and sticker["update_id"] is None  # not delivered
    telegram.push_command("/hotdog", GROUP, reply_to=gif)
    telegram.push_command("/classify", GROUP, reply_to=sticker)
    on_bare = telegram.push_command("/hotdog", GROUP, reply_to=bare_video)
    why_bare = telegram.push_command("/why", GROUP, reply_to=bare_video)
    assert await telegram.reply_text(gif) == GREEN_TEXT
    assert await telegram.reply_text(sticker) == RED_TEXT
    assert await telegram.reply_text(on_bare) == replies.no_preview()
    assert await telegram.reply_text(why_bare) == replies.no_preview()


async def test_a_vote_on_a_gif_keeps_its_previews_ids(
    telegram: FakeTelegram, bot: Application, settings: Settings
) -> None:
    gif = telegram.push_animation(MP4, thumbnail=RED_THUMB)
    (verdict,) = await telegram.replies_to(gif)
    telegram.push_callback_query(verdict, "vote:right")
    await telegram.wait_until(lambda: bool(telegram.calls_to("answerCallbackQuery")))
    store = FeedbackStore(settings.database_url)
    try:
        with store.engine.connect() as db:
            (row,) = db.execute(select(votes.c.file_id, votes.c.verdict)).all()
    finally:
        store.close()
    assert row == (thumb_id(gif, "animation"), "hot_dog")  # an image the export can fetch


async def test_a_custom_label_model_answers_them_the_same_way(
    telegram: FakeTelegram, start_bot: StartBot, tmp_path: Path
) -> None:
    spec = ModelSpec(labels=("cat", "other"), positive_label="cat", name="cats")
    await start_bot(model=load_model(build_tiny_model(tmp_path / "cat.onnx", spec)))
    gif = telegram.push_animation(MP4, thumbnail=RED_THUMB)
    sticker = telegram.push_sticker(solid(GREEN, size=(512, 512), fmt="WEBP"))
    assert (await telegram.reply_text(gif)).startswith("✅ Cat!")
    assert (await telegram.reply_text(sticker)).startswith("🚫 Not cat")
    assert await telegram.reply_text(telegram.push_video(MP4)) == replies.no_preview()
