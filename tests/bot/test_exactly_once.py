"""One retry layer, and one answer per photo, whichever way a request fails.

bot.retry is the only place that retries (AIORateLimiter is built with max_retries=0), so a
call is tried at most ATTEMPTS times in all. sendMessage is never sent again once Telegram
may have taken it: each way a request can fail after Telegram acted on it has a test here,
the fake server carrying out the call and then losing its answer.
"""

from __future__ import annotations

import itertools
import logging

import httpx
import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut
from telegram.ext import Application

from nothotdog.bot import replies
from nothotdog.bot.app import RATE_LIMIT_RETRIES
from nothotdog.bot.intake import is_taking
from nothotdog.bot.retry import ATTEMPTS, may_have_taken_effect
from tests.bot.conftest import StartBot
from tests.fakebot import AFTER_EFFECTS, FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid

TIMEOUT = 1.0  # the bot's request timeout in these tests (10 s in production)

# PTB warns (constructing RetryAfter) that retry_after becomes a timedelta in v23.
no_ptb_deprecation = pytest.mark.filterwarnings(
    "ignore::telegram.warnings.PTBDeprecationWarning"
)


def still_running(app: Application) -> bool:
    return is_taking(app)


async def only_answer(api: FakeTelegram, message: dict, text: str, settle: float) -> None:
    """``message`` got ``text`` and nothing else, even after a resend would have come."""
    assert await api.reply_text(message, timeout=15) == text
    await api.quiet(settle)
    assert [m["text"] for m in api.replies_now(message)] == [text]


@pytest.mark.parametrize("effect", sorted(AFTER_EFFECTS))
async def test_send_message_that_telegram_took_is_not_sent_again(
    telegram: FakeTelegram, bot: Application, caplog: pytest.LogCaptureFixture, effect: str
) -> None:
    """drop, cut, reset, garble: the verdict was delivered, only its answer was lost."""
    telegram.after_handling("sendMessage", effect)
    with caplog.at_level(logging.WARNING, logger="nothotdog.bot"):
        message = telegram.push_photo(solid(RED))
        await only_answer(telegram, message, RED_TEXT, settle=1.2)  # past the 0.5 s backoff
    assert len(telegram.calls_to("sendMessage")) == 1  # no copy, and no apology either
    assert "not sending it again" in caplog.text
    after = telegram.push_photo(solid(GREEN))
    await only_answer(telegram, after, GREEN_TEXT, settle=0.2)
    assert still_running(bot)


async def test_send_message_read_timeout_is_not_sent_again(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    app = await start_bot(request_timeout=TIMEOUT)
    telegram.slow("sendMessage", seconds=TIMEOUT + 0.5)  # delivered, its answer too late
    message = telegram.push_photo(solid(RED))
    await only_answer(telegram, message, RED_TEXT, settle=1.2)
    assert len(telegram.calls_to("sendMessage")) == 1
    assert still_running(app)


@pytest.mark.parametrize("status", [500, 502])
async def test_send_message_error_answer_is_sent_again_once(
    telegram: FakeTelegram, bot: Application, status: int
) -> None:
    """An error answer is Telegram saying it did not send it: safe, and right, to resend."""
    telegram.fail("sendMessage", status=status)
    message = telegram.push_photo(solid(GREEN))
    await only_answer(telegram, message, GREEN_TEXT, settle=0.3)
    assert len(telegram.calls_to("sendMessage")) == 2


def test_the_rate_limiter_retries_nothing() -> None:
    assert RATE_LIMIT_RETRIES == 0


@no_ptb_deprecation
async def test_flood_control_that_never_lifts_is_tried_attempts_times_in_all(
    telegram: FakeTelegram, bot: Application
) -> None:
    """Stacked retry loops tried such a call 16 times; one layer tries it ATTEMPTS times."""
    telegram.rate_limit("getFile", retry_after=1, times=100)
    message = telegram.push_photo(solid(RED))
    await only_answer(telegram, message, replies.failed(), settle=0.3)
    calls = telegram.calls_to("getFile")
    assert len(calls) == ATTEMPTS
    assert all(b.at - a.at >= 1.0 for a, b in itertools.pairwise(calls))
    assert still_running(bot)


@no_ptb_deprecation
async def test_mixed_faults_share_one_count_of_attempts(
    telegram: FakeTelegram, bot: Application
) -> None:
    for _ in range(ATTEMPTS):  # 502, 429, 502, 429, ...: each kind alone would be retried
        telegram.fail("getFile", status=502)
        telegram.rate_limit("getFile", retry_after=1)
    message = telegram.push_photo(solid(RED))
    await only_answer(telegram, message, replies.failed(), settle=0.3)
    assert len(telegram.calls_to("getFile")) == ATTEMPTS


def _raised(error: TelegramError, cause: BaseException | None) -> TelegramError:
    """``error`` as PTB raises it: ``raise error from cause``."""
    try:
        raise error from cause
    except TelegramError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "taken"),
    [
        # Never left whole: safe to send again.
        (_raised(TimedOut(), httpx.ConnectTimeout("connect")), False),
        (_raised(TimedOut(), httpx.PoolTimeout("pool")), False),
        (_raised(TimedOut(), httpx.WriteTimeout("write")), False),
        (_raised(NetworkError("x"), httpx.ConnectError("refused")), False),
        (_raised(NetworkError("x"), httpx.WriteError("broken pipe")), False),
        # Telegram answered that it did not do it.
        (_raised(NetworkError("Bad Gateway (502)"), None), False),
        (_raised(NetworkError("Bad Gateway (502). Parsing failed"), TelegramError("html")), False),
        (_raised(BadRequest("chat not found"), None), False),
        (_raised(Forbidden("blocked by the user"), None), False),
        # Sent: Telegram may have acted on it.
        (_raised(TimedOut(), httpx.ReadTimeout("read")), True),
        (_raised(NetworkError("x"), httpx.ReadError("reset")), True),
        (_raised(NetworkError("x"), httpx.RemoteProtocolError("disconnected")), True),
        (_raised(TelegramError("Invalid server response"), ValueError("not json")), True),
        (_raised(NetworkError("Unknown error in HTTP implementation"), RuntimeError()), True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_which_failures_may_have_taken_effect(error: TelegramError, taken: bool) -> None:
    """The rule each of the tests above exercises through the fake server, written out; the
    first group cannot be played by a server that has to take the request to fail it."""
    assert may_have_taken_effect(error) is taken
