"""The real bot, end to end over HTTP: each kind of message gets the exact expected reply."""

from __future__ import annotations

import logging

import pytest
from PIL import Image
from telegram.ext import Application

from nothotdog.bot import replies, teach_replies
from nothotdog.bot.app import pipeline_of
from tests.bot.conftest import StartBot
from tests.bot.harness import until
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, encode, solid

GROUP = FakeTelegram.group_chat()


async def test_private_photo_gets_a_verdict_reply(telegram: FakeTelegram, bot: Application) -> None:
    message = telegram.push_photo(solid(RED))
    (reply,) = await telegram.replies_to(message)
    assert reply["text"] == RED_TEXT
    assert reply["chat"]["id"] == message["chat"]["id"]


async def test_downloads_the_smallest_photo_size_that_covers_the_model_input(
    telegram: FakeTelegram, bot: Application
) -> None:
    message = telegram.push_photo(solid(GREEN), width=1280, height=960)
    assert await telegram.reply_text(message) == GREEN_TEXT
    sizes = {s["file_id"]: (s["width"], s["height"]) for s in message["photo"]}
    (get_file,) = telegram.calls_to("getFile")
    assert sizes[get_file.params["file_id"]] == (320, 240)  # not 90x68, not 800x600 or 1280


async def test_small_photo_falls_back_to_its_largest_size(
    telegram: FakeTelegram, bot: Application
) -> None:
    message = telegram.push_photo(solid(RED, size=(200, 150)), width=200, height=150)
    assert await telegram.reply_text(message) == RED_TEXT
    sizes = {s["file_id"]: (s["width"], s["height"]) for s in message["photo"]}
    assert sizes[telegram.calls_to("getFile")[0].params["file_id"]] == (200, 150)


async def test_group_photo_is_answered(telegram: FakeTelegram, bot: Application) -> None:
    message = telegram.push_photo(solid(GREEN), GROUP, user_id=7)
    (reply,) = await telegram.replies_to(message)
    assert reply["text"] == GREEN_TEXT
    assert reply["chat"]["id"] == GROUP["id"]


async def test_image_documents_in_every_format_are_answered(
    telegram: FakeTelegram, bot: Application
) -> None:
    red = Image.new("RGB", (300, 260), RED)
    files = {
        "photo.jpg": ("image/jpeg", encode(red, "JPEG", quality=90)),
        "photo.png": ("image/png", encode(red, "PNG")),
        "photo.webp": ("image/webp", encode(red, "WEBP", lossless=True)),
        "photo.gif": ("image/gif", encode(red.quantize(8), "GIF")),
        "photo.bmp": ("image/bmp", encode(red, "BMP")),
        "photo.tiff": ("image/tiff", encode(red, "TIFF")),
        "sent-as-binary.png": ("application/octet-stream", encode(red, "PNG")),
    }
    messages = [
        telegram.push_document(data, file_name=name, mime_type=mime)
        for name, (mime, data) in files.items()
    ]
    for message in messages:
        assert await telegram.reply_text(message) == RED_TEXT, message["document"]["file_name"]


@pytest.mark.parametrize("chat", [FakeTelegram.private_chat(), GROUP], ids=["private", "group"])
async def test_start_and_help_explain_the_bot(
    telegram: FakeTelegram, bot: Application, chat: dict
) -> None:
    start = telegram.push_command("/start", chat)
    help_ = telegram.push_command(f"/help@{telegram.username}", chat)
    assert await telegram.reply_text(start) == replies.start()
    teach = teach_replies.help_line()  # the tiny model has features, the bot a database
    assert await telegram.reply_text(help_) == f"{replies.help_text(10)}\n{teach}"


async def test_about_reports_the_model_from_its_metadata(
    telegram: FakeTelegram, bot: Application
) -> None:
    text = await telegram.reply_text(telegram.push_command("/about"))
    assert "tiny-redness (version test-1)" in text
    assert "hot_dog, not_hot_dog" in text
    assert "Threshold: 0.50" in text
    assert "93.1% on validation" in text


async def test_privacy_mode_on_hotdog_command_as_a_reply_classifies_that_photo(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    telegram.can_read_all_group_messages = False  # Telegram's default for groups
    await start_bot()
    photo = telegram.push_photo(solid(GREEN), GROUP)
    assert photo["update_id"] is None  # Telegram does not deliver it to the bot
    command = telegram.push_command(f"/hotdog@{telegram.username}", GROUP, reply_to=photo)
    (reply,) = await telegram.replies_to(photo)
    assert reply["text"] == GREEN_TEXT
    assert telegram.replies_now(command) == []
    captioned = telegram.push_photo(solid(RED), GROUP, caption="/hotdog")
    assert await telegram.reply_text(captioned) == RED_TEXT


async def test_privacy_mode_on_but_admin_answers_every_photo(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    telegram.can_read_all_group_messages = False
    telegram.admin_in.add(GROUP["id"])
    await start_bot()
    assert await telegram.reply_text(telegram.push_photo(solid(RED), GROUP)) == RED_TEXT


async def test_hotdog_command_without_a_photo_explains_itself(
    telegram: FakeTelegram, bot: Application
) -> None:
    bare = telegram.push_command("/hotdog", GROUP)
    text = telegram.push_text("just words", GROUP)
    on_text = telegram.push_command("/hotdog", GROUP, reply_to=text)
    pdf = telegram.push_document(b"%PDF-1.4", GROUP, file_name="a.pdf", mime_type="application/pdf")
    on_pdf = telegram.push_command("/hotdog", GROUP, reply_to=pdf)
    assert await telegram.reply_text(bare) == replies.hotdog_usage()
    assert await telegram.reply_text(on_text) == replies.hotdog_usage()
    assert await telegram.reply_text(on_pdf) == replies.not_an_image()


async def test_non_image_document_is_answered_in_private_and_ignored_in_groups(
    telegram: FakeTelegram, bot: Application
) -> None:
    in_group = telegram.push_document(
        b"hello", GROUP, file_name="notes.txt", mime_type="text/plain"
    )
    in_private = telegram.push_document(b"hello", file_name="notes.txt", mime_type="text/plain")
    assert await telegram.reply_text(in_private) == replies.not_an_image()
    await telegram.quiet()
    assert telegram.replies_now(in_group) == []
    assert telegram.replies_in(GROUP["id"]) == []
    assert telegram.calls_to("getFile") == []  # nothing downloaded for either


async def test_corrupt_and_zero_byte_images_get_a_clear_answer(
    telegram: FakeTelegram, bot: Application
) -> None:
    truncated = telegram.push_photo(solid(RED)[:300])
    garbage = telegram.push_document(b"\x89PNG not really", file_name="x.png")
    empty = telegram.push_document(b"", file_name="empty.jpg", mime_type="image/jpeg")
    for message in (truncated, garbage):
        assert await telegram.reply_text(message) == replies.unreadable(
            "the file is not an image I can read, or it is damaged"
        )
    assert await telegram.reply_text(empty) == replies.unreadable("the file is empty")
    after = telegram.push_photo(solid(RED))  # and the bot is still fine
    assert await telegram.reply_text(after) == RED_TEXT


async def test_oversize_file_is_refused_before_downloading(
    telegram: FakeTelegram, bot: Application
) -> None:
    big = 40 * 1024 * 1024
    document = telegram.push_document(solid(RED), file_name="huge.png", declared_size=big)
    photo = telegram.push_photo(solid(RED), declared_size=big, width=100, height=80)
    assert await telegram.reply_text(document) == replies.too_large(big)
    assert await telegram.reply_text(photo) == replies.too_large(big)
    assert telegram.calls_to("getFile") == []
    assert telegram.calls_to("file") == []


async def test_file_telegram_calls_too_big_is_refused(
    telegram: FakeTelegram, bot: Application
) -> None:
    # The message did not declare a size; getFile says it is too big: still a clear answer.
    file_id = telegram.add_file(solid(RED), declared_size=25 * 1024 * 1024)
    document = {"file_id": file_id, "file_unique_id": "u", "file_name": "a.jpg",
                "mime_type": "image/jpeg"}
    message = telegram.push_message(document=document)
    assert await telegram.reply_text(message) == replies.too_large()
    assert telegram.calls_to("file") == []


async def test_many_chats_at_once_every_photo_answered_exactly_once(
    telegram: FakeTelegram, bot: Application
) -> None:
    chats = [FakeTelegram.private_chat(5000 + i) for i in range(24)]
    expected = {}
    for round_ in range(2):
        for i, chat in enumerate(chats):
            color, text = (RED, RED_TEXT) if (i + round_) % 2 else (GREEN, GREEN_TEXT)
            message = telegram.push_photo(solid(color), chat)
            expected[(chat["id"], message["message_id"])] = text
    await telegram.wait_for_messages(len(expected), timeout=30)
    await telegram.quiet(0.3)
    answered = [(m["chat"]["id"], m["reply_to_message_id"]) for m in telegram.sent]
    assert sorted(answered) == sorted(expected)  # each exactly once, none extra
    assert all(m["text"] == expected[(m["chat"]["id"], m["reply_to_message_id"])]
               for m in telegram.sent)
    assert pipeline_of(bot).classified == len(expected)


async def test_confidence_can_be_hidden(telegram: FakeTelegram, start_bot: StartBot) -> None:
    await start_bot(show_confidence=False)
    red, green = telegram.push_photo(solid(RED)), telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(red) == "🌭 Hotdog!"
    assert await telegram.reply_text(green) == "🚫 Not hotdog"


async def test_threshold_setting_overrides_the_models(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(threshold=0.99)
    assert await telegram.reply_text(telegram.push_photo(solid(RED))) == "🚫 Not hotdog (3%)"


async def test_allow_list_refuses_other_chats_without_classifying(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(allowed_chat_ids=frozenset({1001, GROUP["id"]}))
    outsider = FakeTelegram.private_chat(666)
    outsider_group = FakeTelegram.group_chat(-100999)
    photo = telegram.push_photo(solid(RED), outsider)
    again = telegram.push_command("/start", outsider)
    in_outsider_group = telegram.push_photo(solid(RED), outsider_group)
    chatter = telegram.push_text("hi all", outsider_group)
    assert await telegram.reply_text(photo) == replies.not_allowed()
    assert await telegram.reply_text(in_outsider_group) == replies.not_allowed_group()
    await telegram.wait_until(lambda: bool(telegram.calls_to("leaveChat")))
    allowed = telegram.push_photo(solid(RED), FakeTelegram.private_chat(1001))
    in_group = telegram.push_photo(solid(GREEN), GROUP)
    assert await telegram.reply_text(allowed) == RED_TEXT
    assert await telegram.reply_text(in_group) == GREEN_TEXT
    assert telegram.replies_now(again) == []  # told once already
    assert telegram.replies_now(chatter) == []  # the bot has left
    assert [c.params["chat_id"] for c in telegram.calls_to("leaveChat")] == [outsider_group["id"]]
    assert len(telegram.calls_to("getFile")) == 2  # only the allowed photos


async def test_private_text_gets_a_hint_and_edits_are_ignored(
    telegram: FakeTelegram, bot: Application
) -> None:
    hello = telegram.push_text("hello")
    assert await telegram.reply_text(hello) == replies.hotdog_usage_private()
    photo = telegram.push_photo(solid(RED))
    await telegram.reply_text(photo)
    edited = {k: v for k, v in photo.items() if k != "update_id"}
    telegram.push_update({"edited_message": {**edited, "edit_date": edited["date"] + 5}})
    await telegram.quiet()
    assert len(telegram.replies_now(photo)) == 1


async def test_a_full_queue_makes_the_next_photo_wait_its_turn(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(queue_size=1)
    telegram.slow("getFile", seconds=2)  # holds the only place while the next photo arrives
    first = telegram.push_photo(solid(RED))
    await telegram.wait_until(lambda: len(telegram.calls_to("getFile")) == 1)
    second = telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(second, timeout=30) == GREEN_TEXT  # a verdict, not "busy"
    assert await telegram.reply_text(first, timeout=30) == RED_TEXT
    order = [m["reply_to_message"]["message_id"] for m in telegram.sent]
    assert order == [first["message_id"], second["message_id"]]


async def test_busy_only_past_max_wait_and_the_bot_recovers(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(queue_size=1, max_wait_s=0.5)
    telegram.slow("getFile", seconds=4)  # holds the only place longer than MAX_WAIT_S
    first = telegram.push_photo(solid(RED))
    await telegram.wait_until(lambda: len(telegram.calls_to("getFile")) == 1)
    second = telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(second, timeout=30) == replies.busy()
    assert await telegram.reply_text(first, timeout=30) == RED_TEXT
    third = telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(third, timeout=30) == GREEN_TEXT


async def test_startup_registers_commands_and_explains_privacy_mode(
    telegram: FakeTelegram, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.can_read_all_group_messages = False
    with caplog.at_level(logging.INFO, logger="nothotdog.bot"):
        await start_bot()
    assert [c["command"] for c in telegram.commands] == [
        "start", "help", "about", "hotdog", "classify", "why", "privacy", "forget", "language",
        "teach", "done", "labels", "reset"]
    assert telegram.calls_to("deleteWebhook")  # polling mode clears any old webhook
    assert "Group privacy mode is ON" in caplog.text
    assert "Group Privacy > Turn off" in caplog.text


async def test_one_structured_log_line_per_classified_photo(
    telegram: FakeTelegram, bot: Application, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="nothotdog.bot.handlers"):
        await telegram.reply_text(telegram.push_photo(solid(RED), GROUP))
        await until(lambda: any(r.getMessage().startswith("classified") for r in caplog.records))
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("classified")]
    assert "chat_type=supergroup" in line
    assert "label=hot_dog" in line
    assert "probability=0.969" in line
    assert "wait_ms=" in line and "infer_ms=" in line
