"""Run the real bot Application inside a test, as ``python -m nothotdog.bot`` runs it, or the
real ``python -m nothotdog.bot`` process beside it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

from telegram.ext import Application

from nothotdog.bot.serving import serving
from nothotdog.bot.settings import VARIABLES
from tests.fakebot import WAIT_S, FakeTelegram

REPO = Path(__file__).resolve().parents[2]
SETTING_NAMES = list(VARIABLES)  # every environment variable the bot reads
STOP_TIMEOUT_S = 10.0  # a test that ends with photos in flight does not wait 45 s for them


async def until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll ``predicate`` until it holds, for what no Bot API call signals (a log line, a
    counter): a fixed sleep is either too short on a busy machine or wastes time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"not true after {timeout}s"
        await asyncio.sleep(0.005)


def bot_process_env(telegram: FakeTelegram, model: Path, **extra: str) -> dict[str, str]:
    """This environment without any bot setting, plus the fake server, ``model`` and ``extra``:
    every other setting is its default."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(
        PYTHONPATH=str(REPO),
        TELEGRAM_BOT_TOKEN=telegram.token,
        MODEL_PATH=str(model),
        TELEGRAM_BASE_URL=telegram.base_url,
        TELEGRAM_BASE_FILE_URL=telegram.base_file_url,
    )
    env.update(extra)
    return env


async def bot_process(
    env: dict[str, str], cwd: Path, log: IO[bytes] | None = None
) -> asyncio.subprocess.Process:
    """``python -m nothotdog.bot`` in ``cwd``; its output goes to ``log``, else to pipes."""
    out = log if log is not None else asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nothotdog.bot", cwd=cwd, env=env, stdout=out,
        stderr=asyncio.subprocess.STDOUT if log is not None else asyncio.subprocess.PIPE,
    )


async def signalled(proc: asyncio.subprocess.Process, sig: int, timeout: float = 15.0) -> str:
    """Send ``sig`` to a bot process started with pipes and wait for it to exit: its stderr.
    A process that outlives ``timeout`` is killed, so no test leaves one behind."""
    try:
        proc.send_signal(sig)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return err.decode()


@contextlib.asynccontextmanager
async def running(
    app: Application, webhook: dict[str, Any] | None = None
) -> AsyncIterator[Application]:
    """The production start/stop sequence (``bot.serving.serving``), minus the signal handling;
    a short long-poll, so a test's stop does not wait one out."""
    async with serving(app, webhook=webhook, stop_timeout=STOP_TIMEOUT_S, poll_timeout=5):
        yield app
