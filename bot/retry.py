"""The bot's one retry layer: Telegram calls that survive flood control and flaky networks.

python-telegram-bot's AIORateLimiter only paces requests here (built with ``max_retries=0``):
it can retry RetryAfter but not a network error, and two nested loops multiplied attempts
(4 x 4 = 16). This loop sees every failure, so it alone decides: at most ``attempts`` tries
in all, and never a second sendMessage once Telegram may have taken the first. The bot's
replies and button answers go through here too (:func:`reply`, :func:`answer_button`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from telegram import CallbackQuery, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from nothotdog.bot.logs import fields

T = TypeVar("T")

log = logging.getLogger(__name__)

ATTEMPTS = 4
BASE_DELAY = 0.5  # seconds; doubles per attempt: 0.5, 1, 2
MAX_RETRY_AFTER = 60.0  # beyond this, give up rather than keep a handler waiting

# httpx failures that happen before the whole request has left: Telegram cannot have acted on
# it. Every other way a request can fail comes after it was sent (a read timeout, the
# connection dropped or reset before or during the answer, an answer that is not JSON).
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    what: str,
    *,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY,
    idempotent: bool = True,
) -> T:
    """Run ``call`` at most ``attempts`` times: again after RetryAfter (Telegram's delay) or a
    NetworkError, TimedOut included (after 0.5, 1, 2 s).

    BadRequest and every other TelegramError are final: repeating them gives the same answer.
    A call that is not ``idempotent`` (sendMessage) is not repeated once it may have taken
    effect (:func:`may_have_taken_effect`): a second copy would answer a photo twice.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RetryAfter as exc:
            delay = retry_after_seconds(exc)
            if attempt == attempts or delay > MAX_RETRY_AFTER:
                raise
            log.warning("%s hit flood control; retry %d in %.1fs", what, attempt, delay)
        except BadRequest:
            raise
        except NetworkError as exc:  # includes TimedOut
            if attempt == attempts or (not idempotent and may_have_taken_effect(exc)):
                raise
            delay = base_delay * 2 ** (attempt - 1)
            log.warning(
                "%s failed (%s: %s); retry %d in %.1fs",
                what, type(exc).__name__, exc, attempt, delay,
            )
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def reply_once(
    message: Message, send: Callable[[ReplyParameters], Awaitable[T]], method: str
) -> T | None:
    """``send(quote)``, a reply to ``message`` in its chat (and topic), retried as far as is
    safe. None when it failed after Telegram may have taken it (a read timeout, a connection
    dropped after sending, an unreadable answer): it has most likely been delivered, so
    neither it nor an apology is sent a second time."""
    quote = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    try:
        return await with_retries(lambda: send(quote), method, idempotent=False)
    except TelegramError as exc:
        if not may_have_taken_effect(exc):
            raise
        log.warning(
            "%s failed after it was sent (%s: %s); not sending it again %s",
            method, type(exc).__name__, exc,
            fields(chat_id=message.chat.id, message_id=message.message_id),
        )  # fmt: skip
        return None


async def reply(
    message: Message, text: str, markup: InlineKeyboardMarkup | None = None
) -> Message | None:
    """Answer ``message`` with ``text``; None when it may have been delivered and failed
    (never sent twice: see :func:`reply_once`)."""
    return await reply_once(
        message,
        lambda quote: message.reply_text(text, reply_parameters=quote, reply_markup=markup),
        "sendMessage",
    )


async def answer_button(query: CallbackQuery, text: str | None) -> None:
    """Answer a press (its spinner stops and ``text`` pops up); a failure is only logged: the
    press may be too old for Telegram to take an answer, and nothing retries it."""
    try:
        await query.answer(text)
    except TelegramError as exc:
        log.warning("could not answer the button %s", fields(error=exc))


def may_have_taken_effect(exc: BaseException) -> bool:
    """True unless Telegram certainly did not act on the request that raised ``exc``.

    Not taken: Telegram answered with an error (RetryAfter, BadRequest, Forbidden, any HTTP
    error status: PTB raises those without an httpx cause), or the request never left whole
    (no connection, pool or connect timeout, a write that failed). Everything else came after
    the request was sent: a read timeout, the connection dropped before or during the answer,
    a 200 answer that could not be read (PTB's "Invalid server response"), an unknown error.
    """
    if not isinstance(exc, TelegramError):
        return True
    if not isinstance(exc, NetworkError) or isinstance(exc, BadRequest):
        return _unreadable_answer(exc)  # a TelegramError Telegram sent, unless unreadable
    cause = exc.__cause__
    if cause is None or isinstance(cause, TelegramError):
        return False  # PTB's error for an HTTP error status (with a non-JSON body: from one)
    if isinstance(cause, httpx.HTTPError):
        return not isinstance(cause, _NOT_SENT)
    return True


def _unreadable_answer(exc: TelegramError) -> bool:
    """PTB raises a bare TelegramError when a success answer is not JSON."""
    return type(exc) is TelegramError and isinstance(exc.__cause__, ValueError)


def retry_after_seconds(exc: RetryAfter) -> float:
    """Telegram's delay, read as PTB's own AIORateLimiter reads it.

    The public ``retry_after`` warns (PTB 22) that it becomes a timedelta in v23; silencing
    that with ``warnings.catch_warnings`` would change process-wide state from the event loop
    while decoding threads run.
    """
    value = getattr(exc, "_retry_after", None)
    if not isinstance(value, dt.timedelta):  # a future PTB: the public attribute, no warning
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
