"""The line: places and a byte budget for photos in flight, first come first served.

Its only users are the pipeline (which takes a place and bytes per photo) and the metrics
(which read its gauges); it knows nothing of photos, Telegram or the model.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

# A waiting photo costs only a small record, so the line can be long; it is bounded all the
# same, so that a flood cannot grow it without end.
MAX_WAITING = 2_000
# The expected wait is judged from the pace of the last admissions from the line.
PACE_SAMPLES = 16


class Busy(Exception):
    """No room for a photo in time; the message says why (for the log)."""


@dataclass
class _Waiter:
    nbytes: int
    future: asyncio.Future[None]


class Admission:
    """QUEUE_SIZE places and a byte budget for pictures in flight; a fair line for the rest.

    A photo holds a place from admission to verdict, and its file's bytes from admission until
    its decode ends. Files may take three quarters of the budget; the rest is kept so that
    their decodes find room, and a decode waits for running decodes when it does not fit.
    Every byte the bot holds for pictures is counted here, so memory is bounded by the budget,
    and waiting in line holds none of it. Everything runs on the event loop: no locks.
    """

    def __init__(self, places: int, total: int, max_wait_s: float) -> None:
        if total < 1 or places < 1:
            raise ValueError("places and the budget must be positive")
        self.places, self.total, self.max_wait_s = places, total, max_wait_s
        self.files_limit = total - total // 4
        self.used = self.peak = 0  # bytes held now, and the most ever held
        self.in_flight = self.peak_in_flight = 0  # places held now, and the most ever held
        self._decoding = 0
        self._line: deque[_Waiter] = deque()
        self._decode_waiters: list[asyncio.Future[None]] = []
        self._paced: deque[float] = deque(maxlen=PACE_SAMPLES)  # when waiters were admitted

    @property
    def waiting(self) -> int:
        return len(self._line)

    def expected_wait(self, position: int) -> float | None:
        """Seconds until the ``position``-th in line is admitted, at the line's recent pace;
        None while too few have gone through the line to tell."""
        if len(self._paced) < 4:
            return None
        return position * (self._paced[-1] - self._paced[0]) / (len(self._paced) - 1)

    @contextlib.asynccontextmanager
    async def place(self, nbytes: int) -> AsyncIterator[Lease]:
        """A place and ``nbytes`` for a file, in turn; Busy when the line is full or the wait
        would pass ``max_wait_s``. The place is held until the block ends; the bytes until
        the lease is released (after the decode)."""
        lease = await self._admit(nbytes)
        try:
            yield lease
        finally:
            lease.release()
            self.in_flight -= 1
            self._wake()

    async def _admit(self, nbytes: int) -> Lease:
        if not self._line and self._fits(nbytes):
            return self._take(nbytes)
        if len(self._line) >= MAX_WAITING:
            raise Busy(f"{len(self._line)} photos are waiting already")
        expected = self.expected_wait(len(self._line) + 1)
        if expected is not None and expected > self.max_wait_s:
            raise Busy(f"the expected wait is {expected:.0f}s")
        loop = asyncio.get_running_loop()
        waiter = _Waiter(nbytes, loop.create_future())
        self._line.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait_s):
                await asyncio.shield(waiter.future)  # a timeout must not cancel the admission
        except BaseException as exc:  # the wait timed out, or the update was cancelled
            if waiter.future.done():  # admitted in the same instant: give it all back
                self.in_flight -= 1
                self.used -= nbytes
            else:
                self._line.remove(waiter)
            self._wake()  # the next in line may fit where this one did not
            if isinstance(exc, TimeoutError):
                raise Busy(f"not admitted within {self.max_wait_s:.0f}s") from None
            raise
        return Lease(self, nbytes, decode=False)

    def _fits(self, nbytes: int) -> bool:
        return self.in_flight < self.places and self.used + nbytes <= self.files_limit

    def _take(self, nbytes: int) -> Lease:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self._hold(nbytes)
        return Lease(self, nbytes, decode=False)

    def _hold(self, nbytes: int) -> None:
        self.used += nbytes
        self.peak = max(self.peak, self.used)

    def _wake(self) -> None:
        """Admit from the head of the line while the head fits (first come, first served: a
        big file at the head is not overtaken), then let waiting decodes look again."""
        while self._line and self._fits(self._line[0].nbytes):
            waiter = self._line.popleft()
            self._take(waiter.nbytes)
            self._paced.append(waiter.future.get_loop().time())
            waiter.future.set_result(None)
        if not self._line:
            self._paced.clear()  # a pace is only the line's while it lasts: not an old one's
        waiters, self._decode_waiters = self._decode_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def for_decode(self, nbytes: int) -> Lease:
        """``nbytes`` for a decode, after running decodes have made room if need be. With no
        decode running, the bytes are held by files that wait for their own decodes: waiting
        could last forever, so that photo is refused (the one case where "busy" does not
        come from the line)."""
        while self.used + nbytes > self.total:
            if self._decoding == 0:
                raise Busy(f"no room to decode: {self.used} of {self.total} bytes are held")
            waiter = asyncio.get_running_loop().create_future()
            self._decode_waiters.append(waiter)
            await waiter
        self._decoding += 1
        self._hold(nbytes)
        return Lease(self, nbytes, decode=True)

    def _grow(self, lease: Lease, nbytes: int) -> bool:
        extra = nbytes - lease.nbytes
        if extra > 0 and self.used + extra > self.files_limit:
            return False
        self._hold(max(extra, 0))
        lease.nbytes = max(nbytes, lease.nbytes)
        return True

    def _release(self, lease: Lease) -> None:
        self.used -= lease.nbytes
        if lease.decode:
            self._decoding -= 1
        self._wake()


class Lease:
    """Bytes held in the budget until released; a context manager releases them on exit."""

    def __init__(self, admission: Admission, nbytes: int, decode: bool) -> None:
        self._admission: Admission | None = admission
        self.nbytes = nbytes
        self.decode = decode

    def grow(self, nbytes: int) -> bool:
        """Hold ``nbytes`` in all (a file turned out bigger than declared); False if no room."""
        assert self._admission is not None, "released"
        return self._admission._grow(self, nbytes)

    def release(self) -> None:
        if self._admission is not None:
            self._admission._release(self)
            self._admission = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
