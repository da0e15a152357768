"""A byte budget for pictures in flight: memory bounded by what is held, not by a count.

A count of photos in flight cannot bound memory when one file is 20 KB and the next 20 MB.
The budget counts every byte the bot holds for a picture, from the moment it is admitted
until its decode ends: the file (its declared size, plus what the HTTP client buffers while
it streams) and the decode's working set (priced from the header before a pixel is decoded).
Everything runs on the event loop, so no locks.
"""

from __future__ import annotations

import asyncio


class Busy(RuntimeError):
    """No room now (places or bytes): the caller should tell its user to try again shortly."""


class ByteBudget:
    """``total`` bytes for files and decodes together; nothing ever holds more.

    Files are admitted, without waiting, while they fit in three quarters of the budget; the
    last quarter is kept so that their decodes find room. A decode that does not fit waits
    for a running decode to finish; when none is running, waiting could last forever (every
    byte would be held by files waiting for their own decodes), so it gives up with Busy.
    """

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("the budget must be positive")
        self.total = total
        self.files_limit = total - total // 4
        self.used = 0
        self.peak = 0  # most bytes ever held at once: for tests and benchmarks
        self._decoding = 0  # decodes holding bytes
        self._waiters: list[asyncio.Future[None]] = []

    def admit(self, nbytes: int) -> Lease:
        """Hold ``nbytes`` for a file, or raise Busy at once."""
        if self.used + nbytes > self.files_limit:
            raise Busy(f"{self.used} of {self.total} bytes are held; {nbytes} more do not fit")
        return self._hold(nbytes, decode=False)

    async def for_decode(self, nbytes: int) -> Lease:
        """Hold ``nbytes`` for a decode, waiting for running decodes to make room if need be."""
        while self.used + nbytes > self.total:
            if self._decoding == 0:
                raise Busy(f"no room to decode: {self.used} of {self.total} bytes are held")
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self._decoding += 1
        return self._hold(nbytes, decode=True)

    def _hold(self, nbytes: int, decode: bool) -> Lease:
        self.used += nbytes
        self.peak = max(self.peak, self.used)
        return Lease(self, nbytes, decode)

    def _grow(self, lease: Lease, nbytes: int) -> bool:
        extra = nbytes - lease.nbytes
        if extra > 0 and self.used + extra > self.files_limit:
            return False
        self.used += max(extra, 0)
        self.peak = max(self.peak, self.used)
        lease.nbytes = max(nbytes, lease.nbytes)
        return True

    def _release(self, lease: Lease) -> None:
        self.used -= lease.nbytes
        if lease.decode:
            self._decoding -= 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:  # each checks again whether it fits now
            if not waiter.done():
                waiter.set_result(None)


class Lease:
    """Bytes held in a budget until released; a context manager releases them on exit."""

    def __init__(self, budget: ByteBudget, nbytes: int, decode: bool) -> None:
        self._budget: ByteBudget | None = budget
        self.nbytes = nbytes
        self.decode = decode

    def grow(self, nbytes: int) -> bool:
        """Hold ``nbytes`` in all (a file turned out bigger than declared); False if no room."""
        assert self._budget is not None, "released"
        return self._budget._grow(self, nbytes)

    def release(self) -> None:
        if self._budget is not None:
            self._budget._release(self)
            self._budget = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

