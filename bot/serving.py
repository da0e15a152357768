"""Start the Application, feed it updates (``bot.polling`` or ``bot.webhook``), and on a stop
drain, confirm and shut down: what ``python -m nothotdog.bot`` and the tests run.

PTB's ``run_polling``/``run_webhook`` would do this with PTB's Updater, which confirms updates
before they are answered (``bot.intake`` says why that loses photos).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import Any

from telegram.ext import Application

from nothotdog.bot.answered import AnsweredIds
from nothotdog.bot.app import parts_of
from nothotdog.bot.intake import INTAKE_KEY, Intake, Source
from nothotdog.bot.polling import POLL_TIMEOUT_S, Poller
from nothotdog.bot.webhook import WebhookServer

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.asynccontextmanager
async def serving(
    app: Application,
    *,
    webhook: dict[str, Any] | None = None,
    stop_timeout: float,
    poll_timeout: float | None = None,
) -> AsyncIterator[Intake]:
    """The Application started and fed by polling (or by ``webhook``: ``webhook_options``)
    until the block ends; then it drains, confirms and shuts down, as PTB's ``run_polling``
    does minus its signal handling (``run`` adds that)."""
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        intake = app.bot_data[INTAKE_KEY] = Intake(app)
        source: Source
        if webhook is None:
            store = parts_of(app).store
            answered = AnsweredIds(store, app.bot.id) if store is not None else None
            source = Poller(app.bot, intake, timeout=poll_timeout or POLL_TIMEOUT_S,
                            answered=answered)  # fmt: skip
        else:
            source = WebhookServer(app.bot, intake, **webhook)
        intake.source = source
        await app.start()
        try:
            await source.start()
            try:
                yield intake
            finally:
                await source.stop_taking()
                await intake.drain(stop_timeout)
                await source.close()
        finally:
            if app.running:
                await app.stop()
                if app.post_stop:
                    await app.post_stop(app)
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)


def run(app: Application, *, webhook: dict[str, Any] | None, stop_timeout: float) -> None:
    """Serve until SIGINT or SIGTERM, then stop as :func:`serving` does."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        async with serving(app, webhook=webhook, stop_timeout=stop_timeout):
            await stop.wait()

    asyncio.run(main())
