"""Telegram faults, one test each: the bot waits or retries, answers each photo exactly once,
and keeps running. (``test_faults`` covers sendMessage 502 once, sendMessage 429, getFile 500
twice, one dropped download and one failing getUpdates; these cover the rest.)
"""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from telegram.ext import Application

from nothotdog.bot import replies
from nothotdog.bot.intake import is_taking
from nothotdog.bot.retry import BASE_DELAY
from tests.bot.conftest import StartBot
from tests.fakebot import Call, FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid

TIMEOUT = 1.0  # the bot's request timeout in these tests (10 s in production)
GROUP = FakeTelegram.group_chat(-100777)

# PTB warns (constructing RetryAfter) that retry_after becomes a timedelta in v23.
no_ptb_deprecation = pytest.mark.filterwarnings(
    "ignore::telegram.warnings.PTBDeprecationWarning"
)


async def answered_once(api: FakeTelegram, message: dict, text: str, timeout: float = 15) -> None:
    """``message`` got exactly ``text``, once, and nothing more arrives."""
    assert await api.reply_text(message, timeout=timeout) == text
    await api.quiet(0.2)
    assert [m["text"] for m in api.replies_now(message)] == [text]


def still_running(app: Application) -> bool:
    return is_taking(app)


@no_ptb_deprecation
async def test_flood_control_on_get_file_waits_retry_after(
    telegram: FakeTelegram, bot: Application
) -> None:
    telegram.rate_limit("getFile", retry_after=1)
    message = telegram.push_photo(solid(RED), GROUP)
    await answered_once(telegram, message, RED_TEXT)
    first, second = telegram.calls_to("getFile")
    assert second.at - first.at >= 1.0  # waited as long as Telegram said
    assert still_running(bot)


@pytest.mark.parametrize(
    ("method", "status"),
    [("getFile", 502), ("file", 500), ("file", 502), ("sendMessage", 500)],
    ids=["getFile-502", "download-500", "download-502", "sendMessage-500"],
)
async def test_server_error_is_retried_with_backoff(
    telegram: FakeTelegram, bot: Application, method: str, status: int
) -> None:
    telegram.fail(method, status=status)
    message = telegram.push_photo(solid(GREEN))
    await answered_once(telegram, message, GREEN_TEXT)
    first, second = telegram.calls_to(method)
    assert second.at - first.at >= BASE_DELAY * 0.9  # backed off before trying again
    assert still_running(bot)


@pytest.mark.parametrize("method", ["getFile", "file"], ids=["getFile", "download"])
async def test_timed_out_request_is_retried(
    telegram: FakeTelegram, start_bot: StartBot, method: str
) -> None:
    app = await start_bot(request_timeout=TIMEOUT)
    telegram.slow(method, seconds=TIMEOUT + 0.6)  # answers, but after the bot gave up
    message = telegram.push_photo(solid(RED))
    await answered_once(telegram, message, RED_TEXT)
    first, second = telegram.calls_to(method)
    assert second.at - first.at >= TIMEOUT
    assert still_running(app)


async def test_download_dropping_midway_every_time_gets_one_apology(
    telegram: FakeTelegram, bot: Application, caplog: pytest.LogCaptureFixture
) -> None:
    """The fault outlasts the retries: the user hears once that it failed, nothing else."""
    telegram.drop_download(after_bytes=50, times=4)
    with caplog.at_level(logging.WARNING, logger="nothotdog.bot"):
        message = telegram.push_photo(solid(RED))
        await answered_once(telegram, message, replies.failed())
    assert len(telegram.calls_to("file")) == 4
    assert f"update_id={message['update_id']}" in caplog.text
    after = telegram.push_photo(solid(GREEN))  # and once the fault clears, all is well
    await answered_once(telegram, after, GREEN_TEXT)
    assert still_running(bot)


async def test_send_message_answer_timed_out_is_not_sent_twice(
    telegram: FakeTelegram, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram got the message but its answer was late: resending would answer twice."""
    app = await start_bot(request_timeout=TIMEOUT)
    telegram.slow("sendMessage", seconds=TIMEOUT + 0.5)  # delivered, answer lost
    with caplog.at_level(logging.WARNING, logger="nothotdog.bot"):
        message = telegram.push_photo(solid(RED))
        await telegram.reply_text(message)
        await telegram.quiet(0.6)  # time enough for a resend after the 0.5 s backoff
    assert [m["text"] for m in telegram.replies_now(message)] == [RED_TEXT]
    assert len(telegram.calls_to("sendMessage")) == 1  # no copy, and no apology either
    assert "not sending it again" in caplog.text
    after = telegram.push_photo(solid(GREEN))
    await answered_once(telegram, after, GREEN_TEXT)
    assert still_running(app)


async def _invalid_json(call: Call, request: web.Request) -> web.StreamResponse | None:
    if call.method == "getUpdates" and not getattr(_invalid_json, "done", False):
        _invalid_json.done = True  # type: ignore[attr-defined]
        return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
    return None


@no_ptb_deprecation
@pytest.mark.parametrize(
    "fault",
    ["500-twice", "429-retry-after", "409-conflict", "not-json"],
)
async def test_get_updates_errors_are_survived(
    telegram: FakeTelegram, start_bot: StartBot, fault: str
) -> None:
    if fault == "500-twice":
        telegram.fail("getUpdates", status=500, times=2)
    elif fault == "429-retry-after":
        telegram.rate_limit("getUpdates", retry_after=1)
    elif fault == "409-conflict":  # another instance polls with the same token
        telegram.fail("getUpdates", status=409,
                      description="Conflict: terminated by other getUpdates request")
    else:
        _invalid_json.done = False  # type: ignore[attr-defined]
        telegram.hook = _invalid_json
    app = await start_bot()
    message = telegram.push_photo(solid(GREEN))
    await answered_once(telegram, message, GREEN_TEXT)
    if fault == "429-retry-after":
        first, second = telegram.calls_to("getUpdates")[:2]
        assert second.at - first.at >= 1.0
    assert still_running(app)


@no_ptb_deprecation
async def test_every_photo_answered_exactly_once_through_a_storm_of_faults(
    telegram: FakeTelegram, bot: Application
) -> None:
    """All the faults at once, across chats: when they clear, each photo has one answer."""
    telegram.fail("getFile", status=500, times=3)
    telegram.fail("getFile", status=502, times=2)
    telegram.drop_download(after_bytes=80, times=3)
    telegram.fail("file", status=502, times=2)
    telegram.fail("sendMessage", status=502, times=3)
    telegram.rate_limit("sendMessage", retry_after=1, times=1)
    expected = {}
    for i in range(16):
        chat = FakeTelegram.private_chat(7000 + i) if i % 2 else FakeTelegram.group_chat(-7000 - i)
        color, text = (RED, RED_TEXT) if i % 3 else (GREEN, GREEN_TEXT)
        message = telegram.push_photo(solid(color), chat)
        expected[(chat["id"], message["message_id"])] = text
    await telegram.wait_for_messages(len(expected), timeout=30)
    await telegram.quiet(0.5)
    got = {(m["chat"]["id"], m["reply_to_message_id"]): m["text"] for m in telegram.sent}
    assert len(telegram.sent) == len(expected)  # no doubles
    assert got == expected  # and every one the right verdict
    assert all(f.hits == f.times for f in telegram.faults)  # every fault really happened
    assert still_running(bot)
