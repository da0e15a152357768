"""Run the real bot Application inside a test, as ``run_polling``/``run_webhook`` would."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from telegram.ext import Application

from bot.app import ALLOWED_UPDATES


@contextlib.asynccontextmanager
async def running(
    app: Application, webhook: dict[str, Any] | None = None
) -> AsyncIterator[Application]:
    """Same start/stop sequence as ``Application.run_polling``, minus the signal handling."""
    assert app.updater is not None
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        if webhook is None:
            await app.updater.start_polling(
                poll_interval=0, timeout=dt.timedelta(seconds=5), allowed_updates=ALLOWED_UPDATES
            )
        else:
            await app.updater.start_webhook(**webhook)
        await app.start()
        try:
            yield app
        finally:
            if app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
                if app.post_stop:
                    await app.post_stop(app)
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
