"""Albums: one answer per album, sent once the whole album has arrived, in order."""

from __future__ import annotations

import asyncio
import time

import pytest
from telegram.ext import Application

from tests.bot.conftest import StartBot
from tests.bot.harness import until
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, solid

GROUP = FakeTelegram.group_chat()


@pytest.mark.parametrize("chat", [FakeTelegram.private_chat(), GROUP], ids=["private", "group"])
async def test_album_gets_one_answer_listing_each_photo_in_order(
    telegram: FakeTelegram, bot: Application, chat: dict
) -> None:
    album = telegram.push_album([solid(RED), solid(GREEN), solid(GREEN)], chat, user_id=7)
    assert len({m["media_group_id"] for m in album}) == 1
    (reply,) = await telegram.replies_to(album[0])
    assert reply["text"] == "1 🌭 97%  2 🚫 88%  3 🚫 88%"
    assert reply["chat"]["id"] == chat["id"]
    await telegram.quiet(0.4)
    assert len(telegram.sent) == 1  # not one message per photo


async def test_album_with_a_broken_file_says_which_one_and_why(
    telegram: FakeTelegram, bot: Application
) -> None:
    album = telegram.push_album([solid(GREEN), solid(RED)[:200], solid(RED)])
    (reply,) = await telegram.replies_to(album[0])
    lines = reply["text"].splitlines()
    assert lines[0] == "1 🚫 88%  2 😕  3 🌭 97%"
    assert lines[1].startswith("2: 😕 I couldn't read that image")
    await telegram.quiet(0.4)
    assert len(telegram.sent) == 1


async def test_waits_for_the_albums_last_photo(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(album_wait_s=0.6, show_confidence=False)
    first = telegram.push_photo(solid(RED), media_group_id="slow-album")
    await asyncio.sleep(0.3)  # Telegram sends an album's items a little apart
    started = time.monotonic()
    telegram.push_photo(solid(GREEN), media_group_id="slow-album")
    (reply,) = await telegram.replies_to(first)
    assert time.monotonic() - started >= 0.55  # the wait restarted with the second photo
    assert reply["text"] == "1 🌭  2 🚫"


async def test_two_albums_and_a_single_photo_are_kept_apart(
    telegram: FakeTelegram, bot: Application
) -> None:
    one = telegram.push_album([solid(RED), solid(RED)])
    two = telegram.push_album([solid(GREEN), solid(GREEN)], GROUP)
    single = telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(one[0]) == "1 🌭 97%  2 🌭 97%"
    assert await telegram.reply_text(two[0]) == "1 🚫 88%  2 🚫 88%"
    assert await telegram.reply_text(single) == GREEN_TEXT
    await telegram.quiet(0.4)
    assert len(telegram.sent) == 3


async def test_albums_beyond_the_bound_are_answered_photo_by_photo(
    telegram: FakeTelegram, bot: Application
) -> None:
    handlers_albums = next(
        h.callback.__self__.albums
        for group in bot.handlers.values()
        for h in group
        if getattr(getattr(h, "callback", None), "__name__", "") == "on_picture"
    )
    handlers_albums.max_open = 1
    first = telegram.push_album([solid(RED), solid(RED)])
    await until(lambda: bool(handlers_albums._open))  # no API call signals it
    second = telegram.push_album([solid(GREEN)])
    assert await telegram.reply_text(second[0]) == GREEN_TEXT  # on its own
    assert await telegram.reply_text(first[0]) == "1 🌭 97%  2 🌭 97%"
    assert not handlers_albums._open  # nothing left behind
