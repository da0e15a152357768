"""Updates in, confirmed to Telegram only once answered: a deploy or a crash loses no photo.

Telegram keeps each update until the bot confirms it (polling: a getUpdates ``offset`` above
its id; webhook: a 2xx answer to its POST), and unconfirmed updates for 24 hours. PTB's own
Updater confirms an update as soon as it has fetched it, and its webhook server answers 200
before the update is processed, so a stop or a crash lost every photo fetched but not yet
answered. Here an update is confirmed only once its handlers have finished (its answer is
sent): polling confirms the finished prefix of update ids (``bot.polling``), the webhook
answers each POST once its update is done (``bot.webhook``). Telegram holds the line, so no
user data is stored to keep it; polling also writes the ids of answered updates it cannot
confirm yet to the votes' database (``bot.answered``: ids only), so that a crash does not
answer them twice.

A stop (SIGTERM, SIGINT) takes no new update, finishes the ones it has for at most
STOP_TIMEOUT_S, confirms them, and exits; what it never finished stays with Telegram for the
next process. A crash (SIGKILL) may answer again the few updates that were answered but not
yet confirmed (docs/reliability.md says how few).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from telegram import Update
from telegram.ext import Application

from nothotdog.bot.logs import fields

log = logging.getLogger(__name__)

INTAKE_KEY = "intake"  # in bot_data while the application is being served


class Source(Protocol):
    """Where updates come from: ``bot.polling.Poller`` or ``bot.webhook.WebhookServer``."""

    @property
    def running(self) -> bool:
        """Still taking updates: the getUpdates loop is alive, the server listens."""

    async def start(self) -> None: ...

    async def stop_taking(self) -> None:
        """Take no new update; the ones taken are still answered."""

    async def close(self) -> None:
        """After the drain: confirm what finished, let go of connections."""


class Intake:
    """The updates being processed, each as one task: ``process`` returns once its update is
    done, and ``drain`` waits for all of them (for at most ``timeout`` seconds)."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.taking = True
        self.source: Source | None = None
        self._running: dict[int, asyncio.Task[None]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def start(self, update: Update) -> asyncio.Task[None]:
        """Process ``update`` in its own task; the same update again joins the running one."""
        task = self._running.get(update.update_id)
        if task is None:
            # Through PTB's update processor, so concurrent_updates still bounds the work.
            work = self.app.update_processor.process_update(
                update, self.app.process_update(update)
            )
            task = asyncio.create_task(work, name=f"update:{update.update_id}")
            self._running[update.update_id] = task
            task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        update_id = int(task.get_name().split(":")[1])
        self._running.pop(update_id, None)
        if not task.cancelled() and task.exception() is not None:  # PTB's error handler missed it
            log.error("update failed %s", fields(update_id=update_id), exc_info=task.exception())

    async def process(self, update: Update) -> None:
        """Until ``update`` is processed; raises CancelledError if a stop cut it short."""
        await asyncio.shield(self.start(update))

    async def drain(self, timeout: float) -> None:
        """Wait for every update in flight, at most ``timeout`` seconds; cancel the rest (they
        stay unconfirmed, so Telegram hands them to the next process)."""
        self.taking = False
        pending = set(self._running.values())
        if pending:
            log.info("stopping: finishing %s", fields(updates=len(pending), within_s=timeout))
            _, pending = await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("stopped before finishing %s; Telegram keeps them for the next start",
                        fields(updates=len(pending)))  # fmt: skip
            await asyncio.wait(pending)


def intake_of(app: Application) -> Intake | None:
    return app.bot_data.get(INTAKE_KEY)


def is_taking(app: Application) -> bool:
    """The application runs and its source still takes updates (the getUpdates loop is
    alive, or the webhook server listens)."""
    intake = intake_of(app)
    return (app.running and intake is not None and intake.taking
            and intake.source is not None and intake.source.running)  # fmt: skip
