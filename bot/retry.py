"""Telegram calls that survive flood control and flaky networks, so no reply is lost."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.warnings import PTBDeprecationWarning

T = TypeVar("T")

log = logging.getLogger(__name__)

ATTEMPTS = 4
BASE_DELAY = 0.5  # seconds; doubles per attempt: 0.5, 1, 2
MAX_RETRY_AFTER = 60.0  # beyond this, give up rather than keep a handler waiting


async def with_retries(
    call: Callable[[], Awaitable[T]],
    what: str,
    *,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY,
    idempotent: bool = True,
) -> T:
    """Run ``call`` again on RetryAfter (after Telegram's delay), TimedOut or NetworkError.

    BadRequest and Forbidden are final: repeating them gives the same answer. A call that is
    not ``idempotent`` (sendMessage) is not repeated once it may have taken effect: after a
    read timeout Telegram may well have delivered the message and only its answer got lost,
    and a second copy would answer the photo twice. Error answers (429, 5xx), connection
    failures and timeouts before the request was fully sent are retried either way.

    The AIORateLimiter already retries RetryAfter a few times and holds back every other
    request meanwhile; this loop is the last line for what gets past it.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RetryAfter as exc:
            delay = _retry_after_seconds(exc)
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


def may_have_taken_effect(exc: BaseException) -> bool:
    """True when the request reached Telegram whole and only its answer is missing.

    PTB raises TimedOut for every httpx timeout; only a read timeout comes after the request
    was sent. Connect, write and pool timeouts mean Telegram never got it all.
    """
    return isinstance(exc, TimedOut) and isinstance(exc.__cause__, httpx.ReadTimeout)


def _retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that this int becomes a timedelta in v23
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
