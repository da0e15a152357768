"""Update ids answered but not yet confirmed to Telegram, kept in the votes' database, so that
the next polling process skips them after a crash.

Polling confirms only the finished prefix of update ids (``bot.polling``), and answers finish
out of order, so at any moment many answered updates sit above an unfinished older one: a
crash then (SIGKILL, out of memory) made the next process answer them again. Each answered
id is written here right after its answer is sent; the next process reads them at start-up
and treats them as finished, so it confirms them without answering again.

A row is the bot's id, the update's id and when it was answered: no user data. A row is
deleted once Telegram has been told the offset past it, and rows older than a day are ignored
and deleted at start-up: Telegram keeps an unconfirmed update at most 24 hours, and after a
week without updates it may hand out ids from a new random start, which an old row must not
match. Polling is the one process that needs this (replicas take webhooks, whose HTTP answer
confirms each update by itself).

Writes are batched: while one is in flight, ids that finish wait and go in the next, one
transaction, in a thread (``FeedbackStore.run``), so a burst costs a few commits, not one per
update, and the event loop never waits on the database. If the database fails, the bot
answers as before and only loses this shortening of the crash window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from nothotdog.bot.feedback import FeedbackStore, StoreError
from nothotdog.bot.logs import fields

log = logging.getLogger(__name__)

KEEP = dt.timedelta(hours=24)  # Telegram drops an unconfirmed update after 24 hours

metadata = MetaData()
answered = Table(
    "nothotdog_answered_updates", metadata,
    Column("bot_id", BigInteger, primary_key=True),  # one database may serve several bots
    Column("update_id", BigInteger, primary_key=True),
    Column("answered_at", DateTime(timezone=True), nullable=False),
)  # fmt: skip


class AnsweredIds:
    """The answered ids of one bot above the offset Telegram was last told: written as they
    finish, deleted once confirmed."""

    def __init__(self, store: FeedbackStore, bot_id: int) -> None:
        self.store = store
        self.bot_id = bot_id
        self.kept: set[int] = set()  # in the table, as far as we know
        self._pending: set[int] = set()
        self._confirmed = 0  # Telegram holds no update below this
        self._writing: asyncio.Task[None] | None = None
        self._failing = False

    async def load(self) -> set[int]:
        """The ids a previous process answered and Telegram may still hand back; raises
        StoreError if the database does not answer."""
        self.kept = await self.store.run(self._load)
        return set(self.kept)

    def _load(self) -> set[int]:
        metadata.create_all(self.store.engine)
        mine = answered.c.bot_id == self.bot_id
        with self.store.engine.begin() as db:
            old = dt.datetime.now(dt.UTC) - KEEP
            db.execute(delete(answered).where(mine, answered.c.answered_at < old))
            return set(db.scalars(select(answered.c.update_id).where(mine)))

    def add(self, update_id: int) -> None:
        """``update_id`` was answered: write it soon (now, unless a write is in flight)."""
        self._pending.add(update_id)
        self._write_soon()

    def confirmed(self, offset: int) -> None:
        """Telegram was told ``offset``: the rows below it go with the next write (a write of
        their own at every confirmation would double the writes)."""
        self._confirmed = max(self._confirmed, offset)

    async def close(self) -> None:
        """Wait for the writes in flight, then delete what has been confirmed."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)
        if self.kept and min(self.kept) < self._confirmed:
            self._write_soon()
            await self._writing

    def _write_soon(self) -> None:
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_all(), name="answered-ids")

    async def _write_all(self) -> None:
        while True:
            below = self._confirmed
            new = {i for i in self._pending if i >= below}  # below: confirmed already
            self._pending.clear()
            try:
                prune = any(i < below for i in self.kept)
                await self.store.run(self._write, new, below if prune else None)
            except StoreError as exc:
                if not self._failing:
                    log.warning("cannot keep answered update ids (%s); after a crash the next "
                                "process may answer some again", type(exc).__name__)  # fmt: skip
                self._failing = True
                return  # these ids rely on the finished prefix alone, as without a database
            if self._failing:
                log.info("keeping answered update ids again %s", fields(bot_id=self.bot_id))
            self._failing = False
            self.kept = {i for i in self.kept | new if i >= below}
            if not self._pending:
                return

    def _write(self, new: set[int], below: int | None) -> None:
        dialect = postgresql if self.store.engine.dialect.name == "postgresql" else sqlite
        now = dt.datetime.now(dt.UTC)
        with self.store.engine.begin() as db:
            if new:
                rows = [{"bot_id": self.bot_id, "update_id": i, "answered_at": now} for i in new]
                db.execute(dialect.insert(answered).on_conflict_do_nothing(), rows)
            if below is not None:
                db.execute(delete(answered).where(answered.c.bot_id == self.bot_id,
                                                  answered.c.update_id < below))  # fmt: skip
