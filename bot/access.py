"""The allow-list: ALLOWED_CHAT_IDS, and outsiders turned away without being told it on every
message."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from nothotdog.bot import replies
from nothotdog.bot.logs import fields
from nothotdog.bot.retry import reply, with_retries

log = logging.getLogger(__name__)

LEAVE_AGAIN_S = 60.0  # an outsider group that re-adds the bot is left again, at most this often


class Cooldown:
    """At most one "yes" per chat per ``interval`` seconds.

    Remembers at most ``capacity`` chats, oldest forgotten first, so someone writing from many
    accounts cannot grow it without bound; at worst a forgotten chat is answered again early.
    """

    def __init__(
        self,
        interval: float,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.capacity = capacity
        self._clock = clock
        self._last: dict[int, float] = {}  # insertion order is time order: see allow()

    def allow(self, chat_id: int) -> bool:
        """True (and the clock starts again) if ``chat_id`` was not allowed in the interval."""
        now = self._clock()
        while self._last:
            oldest = next(iter(self._last))
            if now - self._last[oldest] < self.interval:
                break
            del self._last[oldest]
        if chat_id in self._last:
            return False
        if len(self._last) >= self.capacity:
            del self._last[next(iter(self._last))]
        self._last[chat_id] = now  # only ever added after its old entry expired: stays sorted
        return True


class Gate:
    """Runs before every handler when ALLOWED_CHAT_IDS is set.

    A private outsider is told "no" at most once per OUTSIDER_REPLY_MINUTES; an outsider group
    is told once, then left (it is no place for a private bot). Nothing of theirs is
    downloaded.
    """

    def __init__(self, allowed: frozenset[int] | set[int], tell_again_s: float) -> None:
        self.allowed = allowed
        self.told = Cooldown(tell_again_s)
        self.left = Cooldown(LEAVE_AGAIN_S)

    async def check(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, message = update.effective_chat, update.effective_message
        if chat is None or chat.id in self.allowed:
            return
        if message is not None:
            await self.turn_away(message, context)
        raise ApplicationHandlerStop

    async def turn_away(self, message: Message, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Say no (if not said lately) and leave a group; a failure is logged, not apologised
        for: an outsider gets no second message."""
        chat = message.chat
        try:
            if chat.type == ChatType.PRIVATE:
                if self.told.allow(chat.id):
                    log.info("turned away %s", fields(chat_id=chat.id, chat_type=chat.type))
                    await reply(message, replies.not_allowed())
                return
            if self.told.allow(chat.id):
                await reply(message, replies.not_allowed_group())
            if self.left.allow(chat.id):
                log.info("leaving %s", fields(chat_id=chat.id, chat_type=chat.type))
                await with_retries(lambda: context.bot.leave_chat(chat.id), "leaveChat")
        except TelegramError as exc:  # e.g. blocked or removed meanwhile: nothing left to do
            log.warning("could not turn away or leave %s", fields(chat_id=chat.id, error=exc))
