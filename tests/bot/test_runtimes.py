"""The real bot on each runtime: the same verdicts through Telegram, RUNTIME honoured by the
process, and OpenVINO that cannot run the file handing it to onnxruntime."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest

from nothotdog.bot.app import build_application
from nothotdog.contract import runtime as runtimes
from tests.bot.harness import bot_process, bot_process_env, running, signalled
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
async def test_bot_process_answers_on_the_runtime_it_is_told(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path, runtime: str
) -> None:
    env = bot_process_env(telegram, tiny_model_path, RUNTIME=runtime)
    proc = await bot_process(env, tmp_path)
    try:
        await telegram.wait_until(lambda: bool(telegram.calls_to("getUpdates")), timeout=30)
        red, green = telegram.push_photo(solid(RED)), telegram.push_photo(solid(GREEN))
        assert await telegram.reply_text(red, timeout=15) == RED_TEXT
        assert await telegram.reply_text(green, timeout=15) == GREEN_TEXT
    finally:
        log = await signalled(proc, signal.SIGTERM)
    assert proc.returncode == 0, log
    assert f"on {runtime}" in log and "cannot run" not in log


async def test_bot_falls_back_to_onnxruntime_when_openvino_cannot_compile(
    telegram: FakeTelegram, settings, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setattr(runtimes, "OPENVINO_DEVICE", "NO_SUCH_DEVICE")  # OpenVINO's real error
    with caplog.at_level(logging.WARNING, logger=runtimes.__name__):
        app = build_application(settings.model_copy(update={"runtime": "openvino"}))
    assert any("OpenVINO cannot run" in r.getMessage() for r in caplog.records)
    async with running(app):
        message = telegram.push_photo(solid(RED))
        assert await telegram.reply_text(message) == RED_TEXT
