"""An asyncio micro-batcher: requests that arrive together share one call of a batch function.

One onnxruntime call on 8 images costs far less than 8 calls on one, and the batch function
runs in a worker thread so the event loop keeps serving Telegram meanwhile. Knows nothing of
images or Telegram: it batches any items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """The queue is full: the caller should tell its user to try again shortly."""


class BatcherClosed(RuntimeError):
    """The batcher is shutting down and takes no more work."""


@dataclass
class BatchStats:
    """Counters for tests and benchmarks: did batches actually form?"""

    batches: int = 0
    items: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)
        if len(self.sizes) < 10_000:
            self.sizes.append(size)


class MicroBatcher(Generic[T, R]):
    """Collect up to ``max_batch`` items or ``max_wait`` seconds, then run ``run_batch`` once.

    ``run_batch`` gets a list of items and must return one result per item, in order. It runs
    in ``executor``; at most ``concurrency`` batches run at once, and while they run new items
    queue up into the next batch. If a batch call raises, its items are retried one by one so
    that only the item that fails gets the error. ``max_queue`` bounds the items waiting: one
    more raises :class:`Busy` at once instead of growing memory.
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        *,
        executor: Executor | None,
        max_batch: int = 8,
        max_wait: float = 0.005,
        max_queue: int = 64,
        concurrency: int = 1,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or concurrency < 1 or max_wait < 0:
            raise ValueError("max_batch, max_queue and concurrency must be >= 1, max_wait >= 0")
        self._run_batch = run_batch
        self._executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self._concurrency = concurrency
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._collector: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Items waiting for a batch (not counting those being run)."""
        return self._queue.qsize() if self._queue is not None else 0

    async def submit(self, item: T) -> R:
        """The result for ``item``; raises :class:`Busy` when ``max_queue`` items wait."""
        if self._closed:
            raise BatcherClosed("the classifier is shutting down")
        self._ensure_started()
        assert self._queue is not None
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise Busy(f"{self.max_queue} items are already waiting") from None
        return await future

    async def close(self) -> None:
        """Stop taking work, let running batches finish, fail whatever still waits."""
        self._closed = True
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(BatcherClosed("the classifier is shutting down"))

    def _ensure_started(self) -> None:
        # Started lazily so the batcher binds to whichever event loop first uses it.
        if self._collector is None:
            self._queue = asyncio.Queue(maxsize=self.max_queue)
            self._slots = asyncio.Semaphore(self._concurrency)
            self._collector = asyncio.create_task(self._collect(), name="micro-batcher")

    async def _collect(self) -> None:
        assert self._queue is not None and self._slots is not None
        loop = asyncio.get_running_loop()
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while True:
                batch = [await self._queue.get()]
                deadline = loop.time() + self.max_wait
                await self._slots.acquire()  # while all slots are busy, the next batch grows
                while len(batch) < self.max_batch:
                    if not self._queue.empty():
                        batch.append(self._queue.get_nowait())
                        continue
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                live = [(item, fut) for item, fut in batch if not fut.done()]
                batch = []
                if not live:
                    self._slots.release()
                    continue
                task = asyncio.create_task(self._run(live))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        finally:  # closed while holding items that no batch took: their callers must hear
            closed = BatcherClosed("the classifier is shutting down")
            self._settle(batch, [closed] * len(batch))

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        assert self._slots is not None
        items = [item for item, _ in batch]
        loop = asyncio.get_running_loop()
        try:
            self.stats.record(len(items))
            outcomes = await loop.run_in_executor(self._executor, self._call, items)
        except BaseException as exc:  # cancelled while running: fail the callers, not silently
            outcomes = [exc] * len(items)
            if not isinstance(exc, Exception):
                self._settle(batch, outcomes)
                raise
        finally:
            self._slots.release()
        self._settle(batch, outcomes)

    def _call(self, items: list[T]) -> list[R | BaseException]:
        """Runs in the worker thread: the whole batch, or item by item if the batch fails."""
        try:
            results = list(self._run_batch(items))
            if len(results) != len(items):
                raise RuntimeError(f"batch function gave {len(results)} results for {len(items)}")
            return results  # type: ignore[return-value]
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            log.warning("batch of %d failed (%s); retrying its items one by one", len(items), exc)
        outcomes: list[R | BaseException] = []
        for item in items:
            try:
                (result,) = self._run_batch([item])
                outcomes.append(result)
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    @staticmethod
    def _settle(
        batch: list[tuple[T, asyncio.Future[R]]], outcomes: Sequence[R | BaseException]
    ) -> None:
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller gave up (cancelled): nobody to tell
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
