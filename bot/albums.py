"""Albums: one answer per album, not one per photo.

Telegram delivers an album as separate updates sharing ``message.media_group_id``, and lets a
bot send about 20 messages a minute into a group: answering a 10-photo album photo by photo
would spend half of that. Each picture is judged as soon as its update arrives; the first
update's handler then waits until ``wait_s`` has passed since the album's last picture and
every verdict is in, and sends one reply to the album's first picture.

No timers or jobs outside the handlers: the waiting is the first handler's own, so errors
reach PTB's error handler and a stopping application waits for it like any other update.
Memory is bounded: at most ``max_open`` albums are collected at once and ``MAX_PICTURES`` per
album (Telegram's own limit is 10); pictures beyond either are answered one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from telegram import Message

from nothotdog.bot.logs import fields

log = logging.getLogger(__name__)

MAX_PICTURES = 10  # Telegram's most per album
MAX_OPEN = 256  # albums collected at once; each holds only its messages and small verdicts



# What judging one picture gives: an Outcome for verdicts; bot.teach's own results for the
# photos a chat is taught with, and for its own labels' answers.
R = TypeVar("R")
# Each picture's result in order; None where judging it failed (the error is logged).
SendAlbum = Callable[[Message, Sequence[R | None]], Awaitable[None]]


@dataclass
class _Album:
    first: Message  # the lowest message_id so far: the one the answer replies to
    deadline: float  # loop time: wait_s after the latest picture arrived
    judged: dict[int, asyncio.Task] = field(default_factory=dict)  # by message_id


class Albums(Generic[R]):
    """The albums whose pictures are still arriving, keyed by chat and media_group_id."""

    def __init__(self, wait_s: float, send: SendAlbum[R], max_open: int = MAX_OPEN) -> None:
        self.wait_s = wait_s
        self.send = send
        self.max_open = max_open
        self._open: dict[tuple[int, str], _Album] = {}

    def accepts(self, message: Message) -> bool:
        """True when ``message`` belongs to an album this collector has room for."""
        if not message.media_group_id:
            return False
        album = self._open.get(_key(message))
        if album is None:
            return len(self._open) < self.max_open
        return len(album.judged) < MAX_PICTURES

    async def add(self, message: Message, judge: Awaitable[R]) -> None:
        """Judge one picture of an album; the album's first arrival also sends the answer."""
        loop = asyncio.get_running_loop()
        key = _key(message)
        album = self._open.get(key)
        collects = album is None
        if album is None:
            album = self._open[key] = _Album(first=message, deadline=0.0)
        elif message.message_id < album.first.message_id:
            album.first = message
        task = asyncio.ensure_future(judge)
        album.judged[message.message_id] = task
        album.deadline = loop.time() + self.wait_s
        if not collects:
            await asyncio.wait([task])  # its failure, if any, is reported in the album's answer
            return
        try:
            await self._settle(album)
        finally:
            del self._open[key]
        answers = [self._answer(album, mid) for mid in sorted(album.judged)]
        await self.send(album.first, answers)

    async def _settle(self, album: _Album) -> None:
        """Until ``wait_s`` has passed since the last picture and every picture is judged."""
        loop = asyncio.get_running_loop()
        while True:
            remaining = album.deadline - loop.time()
            if remaining > 0:
                await asyncio.sleep(remaining)
                continue
            pending = [task for task in album.judged.values() if not task.done()]
            if not pending:
                return
            await asyncio.wait(pending)

    @staticmethod
    def _answer(album: _Album, message_id: int) -> R | None:
        task = album.judged[message_id]
        error = task.exception()
        if error is None:
            return task.result()
        log.error(
            "album picture failed %s",
            fields(chat_id=album.first.chat.id, message_id=message_id,
                   error=type(error).__name__),
            exc_info=error,
        )  # fmt: skip
        return None


def _key(message: Message) -> tuple[int, str]:
    return message.chat.id, str(message.media_group_id)
