"""Telegram misbehaves; the reply still arrives, exactly once, and the token stays secret."""

from __future__ import annotations

import logging

import pytest
from telegram.ext import Application

from nothotdog.bot import replies
from nothotdog.bot.logs import REDACTED, RedactingFormatter
from tests.bot.conftest import StartBot
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid


async def test_send_message_failing_once_is_retried(
    telegram: FakeTelegram, bot: Application
) -> None:
    telegram.fail("sendMessage", status=502, description="Bad Gateway")
    message = telegram.push_photo(solid(RED))
    assert await telegram.reply_text(message) == RED_TEXT
    await telegram.quiet(0.2)
    assert len(telegram.calls_to("sendMessage")) == 2
    assert len(telegram.replies_now(message)) == 1


# PTB itself warns (constructing RetryAfter) that retry_after becomes a timedelta in v23.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_waits_retry_after_then_answers(
    telegram: FakeTelegram, bot: Application
) -> None:
    telegram.rate_limit("sendMessage", retry_after=1)
    message = telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(message) == GREEN_TEXT
    first, second = telegram.calls_to("sendMessage")
    assert second.at - first.at >= 1.0  # waited as Telegram asked
    assert len(telegram.replies_now(message)) == 1


async def test_download_dropped_midway_is_retried(
    telegram: FakeTelegram, bot: Application
) -> None:
    telegram.drop_download(after_bytes=100)
    message = telegram.push_photo(solid(RED))
    assert await telegram.reply_text(message) == RED_TEXT
    assert len(telegram.calls_to("file")) == 2


async def test_server_error_on_get_file_is_retried(
    telegram: FakeTelegram, bot: Application
) -> None:
    telegram.fail("getFile", status=500, times=2)
    message = telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(message, timeout=15) == GREEN_TEXT
    assert len(telegram.calls_to("getFile")) == 3


async def test_unexpected_failure_is_logged_with_update_id_and_user_is_told(
    telegram: FakeTelegram, bot: Application, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.fail("getFile", status=400, description="Bad Request: wrong file_id specified")
    with caplog.at_level(logging.DEBUG):
        message = telegram.push_photo(solid(RED))
        assert await telegram.reply_text(message) == replies.failed()
        after = telegram.push_photo(solid(RED))
        assert await telegram.reply_text(after) == RED_TEXT
    failures = [r for r in caplog.records if r.getMessage().startswith("update failed")]
    assert len(failures) == 1
    assert f"update_id={message['update_id']}" in failures[0].getMessage()
    assert "error=BadRequest" in failures[0].getMessage()
    # Whatever PTB and httpx logged at DEBUG, our formatter keeps the token out.
    formatter = RedactingFormatter([telegram.token])
    rendered = "\n".join(formatter.format(r) for r in caplog.records)
    assert telegram.token not in rendered
    assert "wrong file_id specified" in rendered.lower()


def test_redacting_formatter_scrubs_tracebacks_too() -> None:
    token = "42:secret-token"
    try:
        raise RuntimeError(f"GET https://api.telegram.org/bot{token}/getMe failed")
    except RuntimeError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", (token,), None)
        record.exc_info = (type(exc), exc, exc.__traceback__)
    text = RedactingFormatter([token]).format(record)
    assert token not in text
    assert text.count(REDACTED) == 2


async def test_get_updates_error_is_survived(telegram: FakeTelegram, start_bot: StartBot) -> None:
    telegram.fail("getUpdates", status=502)  # the very first poll fails
    await start_bot()
    message = telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(message, timeout=15) == GREEN_TEXT
    assert len(telegram.replies_now(message)) == 1
