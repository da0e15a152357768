"""Who outside the allow-list has been told "no" lately, so nobody is told it on every message."""

from __future__ import annotations

import time
from collections.abc import Callable


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
