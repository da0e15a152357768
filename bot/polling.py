"""Our own getUpdates loop: an update is confirmed only once it, and every one before it, is
answered (``bot.intake`` says why PTB's Updater is not used).

Telegram hands back every update from the offset on, at most 100 per call, so the loop holds
at most 100 updates past the oldest unanswered one; the rest wait with Telegram, unconfirmed.
While any update is held Telegram answers a long poll at once, so the calls are paced: a
cheap call (limit 1) confirms as soon as the finished prefix grows (one call at a time, so a
busy moment confirms many in one call), and a full call looks for new updates as often as the
held ones it reads again allow (GAP_PER_HELD_S). Answers finish out of order, though, so many
answered updates sit above an older unfinished one and cannot be confirmed yet: with a
database, their ids are written down (``bot.answered``) and a new process after a crash
treats them as finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Bot, Update
from telegram.error import RetryAfter, TelegramError

from nothotdog.bot.answered import AnsweredIds
from nothotdog.bot.app import ALLOWED_UPDATES
from nothotdog.bot.feedback import StoreError
from nothotdog.bot.intake import Intake
from nothotdog.bot.logs import fields
from nothotdog.bot.retry import BASE_DELAY, retry_after_seconds, with_retries

log = logging.getLogger(__name__)

WINDOW = 100  # getUpdates' most per call
POLL_TIMEOUT_S = 10.0  # a long poll with nothing in flight, as PTB's run_polling does
# A look for new updates reads every held one again (Update.de_json: 0.1 to 0.2 ms each on a
# busy 2-core machine), so it waits this long per held update: about 5% of the event loop.
GAP_PER_HELD_S = 0.003
MIN_GAP_S = 0.02
MAX_BACKOFF_S = 30.0  # between failed getUpdates calls, doubling from BASE_DELAY


class Ledger:
    """Which update ids are being processed, and which finished above the oldest unfinished.

    ``offset`` is 1 + the highest id below which every update we were given has finished:
    what getUpdates may confirm. Telegram hands back everything from the offset on, so an id
    already in flight or finished is recognised and not started twice, and so is one that
    ``answered`` names (a previous process answered it but did not confirm it).
    """

    def __init__(self, answered: set[int] | None = None) -> None:
        self.in_flight: set[int] = set()
        self.finished: set[int] = set()  # at or above the offset: not yet confirmable
        self.answered = answered or set()
        self.offset: int | None = None  # None until the first update: getUpdates' default
        self.idle = asyncio.Event()  # set while nothing is in flight
        self.idle.set()
        self.progress = asyncio.Event()  # set when the offset moves: something to confirm

    @property
    def held(self) -> int:
        """Updates from the offset on that Telegram will hand back again."""
        return len(self.in_flight) + len(self.finished)

    def begin(self, update_id: int) -> bool:
        """True for an update seen for the first time: it is now in flight."""
        if self.offset is not None and update_id < self.offset:
            return False
        if update_id in self.in_flight or update_id in self.finished:
            return False
        self.in_flight.add(update_id)
        self.idle.clear()
        if self.offset is None:
            self.offset = update_id
        if update_id in self.answered:  # finished by a previous process: confirm it only
            self.answered.discard(update_id)
            self.finish(update_id)
            return False
        return True

    async def wait_progress(self, seconds: float) -> None:
        """Until the offset moves (or has moved since the last wait), or ``seconds`` pass."""
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.progress.wait()
        self.progress.clear()

    def finish(self, update_id: int) -> None:
        before = self.offset
        self.in_flight.discard(update_id)
        self.finished.add(update_id)
        if self.in_flight:
            self.offset = min(self.in_flight)
        else:
            self.offset = max(self.finished) + 1
            self.idle.set()
        self.finished = {i for i in self.finished if i >= self.offset}
        self.answered = {i for i in self.answered if i >= self.offset}
        if self.offset != before:
            self.progress.set()


class Poller:
    """getUpdates in a loop, each new update processed by ``intake`` as its own task."""

    def __init__(self, bot: Bot, intake: Intake, *, timeout: float = POLL_TIMEOUT_S,
                 answered: AnsweredIds | None = None) -> None:  # fmt: skip
        self.bot = bot
        self.intake = intake
        self.timeout = timeout
        self.answered = answered  # None without a database (FEEDBACK=false)
        self.ledger = Ledger()
        self.confirmed: int | None = None  # the offset Telegram last saw
        self._fetched_at = 0.0
        self._polling: asyncio.Task[None] | None = None
        self._confirming: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._polling is not None and not self._polling.done()

    async def start(self) -> None:
        # getUpdates is refused (409) while a webhook is set.
        await with_retries(lambda: self.bot.delete_webhook(), "deleteWebhook")
        await self._load_answered()
        self._polling = asyncio.create_task(self._loop(), name="getUpdates")

    async def _load_answered(self) -> None:
        if self.answered is None:
            log.info("FEEDBACK=false: no database to keep answered update ids in, so after a "
                     "crash the next process may answer again the updates answered but not yet "
                     "confirmed")  # fmt: skip
            return
        try:
            self.ledger.answered = await self.answered.load()
        except StoreError as exc:
            log.warning("cannot read answered update ids from DATABASE_URL (%s); after a crash "
                        "the next process may answer again the updates answered but not yet "
                        "confirmed", type(exc).__name__)  # fmt: skip
            self.answered = None

    async def stop_taking(self) -> None:
        """Stop fetching; a getUpdates cut short loses nothing: what it would have returned
        is not confirmed."""
        self.intake.taking = False
        await _cancelled(self._polling)
        self._confirming = asyncio.create_task(self._confirm_while_draining(), name="confirm")

    async def close(self) -> None:
        """Confirm every update that finished, so the next process does not answer it again."""
        await _cancelled(self._confirming)
        if self.ledger.offset != self.confirmed:
            try:
                await with_retries(lambda: self._get(limit=1, timeout=0), "getUpdates")
            except TelegramError as exc:
                log.warning("could not confirm the last answered updates %s",
                            fields(offset=self.ledger.offset, error=exc))  # fmt: skip
        if self.answered is not None:
            await self.answered.close()

    async def _loop(self) -> None:
        failures = 0
        while self.intake.taking:
            try:
                await self._step()
                failures = 0
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
            except TelegramError as exc:
                failures += 1
                delay = min(BASE_DELAY * 2 ** (failures - 1), MAX_BACKOFF_S)
                log.warning("getUpdates failed (%s: %s); again in %.1fs",
                            type(exc).__name__, exc, delay)  # fmt: skip
                await asyncio.sleep(delay)

    async def _step(self) -> None:
        ledger, loop = self.ledger, asyncio.get_running_loop()
        if ledger.in_flight:
            fetch_at = self._fetched_at + max(MIN_GAP_S, ledger.held * GAP_PER_HELD_S)
            if ledger.offset == self.confirmed:  # nothing to confirm yet
                await ledger.wait_progress(max(0.0, fetch_at - loop.time()))
        if not ledger.in_flight:  # a long poll, whose offset confirms all that finished
            await self._get(limit=WINDOW, timeout=self.timeout)
        elif loop.time() >= fetch_at and ledger.held < WINDOW:
            await self._get(limit=WINDOW, timeout=0)
        elif ledger.offset != self.confirmed:
            await self._get(limit=1, timeout=0)

    async def _confirm_while_draining(self) -> None:
        """While a stop drains, keep confirming what finishes (a SIGKILL may come yet)."""
        while self.ledger.in_flight:
            if self.ledger.offset == self.confirmed:
                await self.ledger.wait_progress(MIN_GAP_S)
            if self.ledger.offset != self.confirmed:
                with contextlib.suppress(TelegramError):
                    await self._get(limit=1, timeout=0)

    async def _get(self, *, limit: int, timeout: float) -> None:
        """One getUpdates call from the ledger's offset; new updates start processing, unless
        the loop is stopping (then Telegram keeps them)."""
        offset = self.ledger.offset
        updates = await self.bot.get_updates(
            offset=offset, limit=limit, timeout=timeout, allowed_updates=ALLOWED_UPDATES
        )
        self.confirmed = offset
        if self.answered is not None and offset is not None:
            self.answered.confirmed(offset)
        if limit > 1:
            self._fetched_at = asyncio.get_running_loop().time()
        if not self.intake.taking:
            return
        for update in updates:
            if self.ledger.begin(update.update_id):
                self._start(update)

    def _start(self, update: Update) -> None:
        task = self.intake.start(update)

        def finished(task: asyncio.Task[None]) -> None:
            if not task.cancelled():  # cut short by a stop: left for the next process
                self.ledger.finish(update.update_id)
                if self.answered is not None:
                    self.answered.add(update.update_id)

        task.add_done_callback(finished)


async def _cancelled(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
