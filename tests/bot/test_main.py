"""Start-up as users meet it: ``main()`` and the real ``python -m nothotdog.bot`` process."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from nothotdog.bot.__main__ import main, webhook_options
from nothotdog.bot.settings import Settings, load_settings, shipped_model_path
from tests.bot.conftest import StartBot
from tests.bot.harness import SETTING_NAMES, bot_process, bot_process_env, signalled
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid
from tests.ports import free_port
from tests.tinymodel import build_tiny_model


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A working directory with no .env and no settings in the environment; logging restored."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield tmp_path
    root.handlers[:] = handlers
    root.setLevel(level)


def test_missing_token_says_where_to_put_it(clean_env: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "TELEGRAM_BOT_TOKEN is not set" in err
    assert ".env.example" in err
    assert "Traceback" not in err


def test_no_model_path_uses_the_shipped_model_from_any_folder(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.model_path == shipped_model_path()
    assert settings.model_path.is_file() and settings.model_path.is_absolute()


def test_missing_model_path_names_the_fixes(
    clean_env: Path, capsys: pytest.CaptureFixture
) -> None:
    (clean_env / ".env").write_text("TELEGRAM_BOT_TOKEN=1:from-dotenv\nMODEL_PATH=gone.onnx\n")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "model file gone.onnx does not exist" in err
    assert "Fix MODEL_PATH" in err and "leave it empty" in err
    assert "Point MODEL_PATH" not in err  # a broken model's advice, not a missing one's
    assert "make model" not in err  # no training run for a typo
    assert "Traceback" not in err


def test_missing_shipped_model_says_reinstall(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    gone = clean_env / "site-packages" / "nothotdog" / "bot" / "shipped" / "nothotdog.onnx"
    monkeypatch.setattr("nothotdog.bot.settings.shipped_model_path", lambda: gone)
    monkeypatch.setattr("nothotdog.bot.classifier.shipped_model_path", lambda: gone)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "the model that ships with nothotdog is missing" in err
    assert "pip install --force-reinstall ." in err


def test_help_lists_the_settings_without_a_token(
    clean_env: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "usage: nothotdog-bot" in out
    for name in SETTING_NAMES:
        assert name in out


def test_version(clean_env: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("nothotdog-bot ")


def test_plain_http_public_webhook_stops_startup_with_a_clear_message(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("WEBHOOK_URL", "http://bot.example.com/nothotdog")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "WEBHOOK_URL must start with https://" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("broken", ["garbage", "wrong_shape", "bad_metadata"])
def test_broken_model_stops_startup_with_a_clear_message(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, broken: str
) -> None:
    path = clean_env / "broken.onnx"
    if broken == "garbage":
        path.write_bytes(b"this is not onnx")
        expected = "cannot load"
    elif broken == "wrong_shape":
        build_tiny_model(path, input_shape=("batch", 299, 299, 3))
        expected = "input shape"
    else:
        build_tiny_model(path, metadata={"nothotdog.positive_label": "sausage"})
        expected = "bad metadata"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("MODEL_PATH", str(path))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Point MODEL_PATH at a file made by nothotdog-export" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("stop", "level"), [(signal.SIGTERM, "INFO"), (signal.SIGINT, "DEBUG")], ids=["TERM", "INT"]
)
async def test_bot_process_answers_and_stops_cleanly_on_a_signal(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path, stop: int, level: str
) -> None:
    telegram.can_read_all_group_messages = False
    started = time.monotonic()
    proc = await bot_process(bot_process_env(telegram, tiny_model_path, LOG_LEVEL=level), tmp_path)
    try:
        await telegram.wait_until(lambda: bool(telegram.calls_to("getUpdates")), timeout=30)
        message = telegram.push_photo(solid(RED))
        assert await telegram.reply_text(message, timeout=15) == RED_TEXT
        first_answer_s = time.monotonic() - started
    finally:
        log = await signalled(proc, stop)
    assert proc.returncode == 0, log
    assert "Group privacy mode is ON" in log
    assert "classified" in log and "label=hot_dog" in log
    assert log.rstrip().endswith("stopped")
    assert telegram.token not in log  # not even at DEBUG, where every request is logged
    print(f"process start to first answered photo: {first_answer_s:.2f}s")


async def _startup_failure(env: dict[str, str], cwd: Path) -> str:
    """Run ``python -m nothotdog.bot`` until it gives up; its stderr, checked to end in one plain
    line."""
    proc = await bot_process(env, cwd)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    text = err.decode()
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert text.rstrip().splitlines()[-1].startswith("nothotdog-bot: ")
    return text.rstrip().splitlines()[-1]


async def test_rejected_token_stops_startup_with_a_clear_message(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path
) -> None:
    wrong = "999:AAWrongTokenButWellFormed_abcdefghijklm"
    env = bot_process_env(telegram, tiny_model_path, TELEGRAM_BOT_TOKEN=wrong)
    line = await _startup_failure(env, tmp_path)
    assert "Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized)" in line
    assert "@BotFather" in line
    assert "WrongTokenButWellFormed" not in line


async def test_malformed_token_is_called_malformed(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path
) -> None:
    env = bot_process_env(telegram, tiny_model_path, TELEGRAM_BOT_TOKEN="999:not-the-right-token")
    line = await _startup_failure(env, tmp_path)
    assert "does not look like a bot token" in line
    assert "not-the-right-token" not in line


async def test_base_url_answering_404_is_blamed_on_the_url(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path
) -> None:
    wrong = telegram.base_url.replace("/bot", "/api/bot")  # a path the server does not serve
    env = bot_process_env(telegram, tiny_model_path, TELEGRAM_BASE_URL=wrong)
    line = await _startup_failure(env, tmp_path)
    assert "404 Not Found" in line and "TELEGRAM_BASE_URL is wrong" in line
    assert "rejected" not in line


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_unreachable_api_is_one_line_and_a_traceback_only_at_debug(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path, level: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/bot"
    env = bot_process_env(telegram, tiny_model_path, TELEGRAM_BASE_URL=closed, LOG_LEVEL=level)
    proc = await bot_process(env, tmp_path)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    text = err.decode()
    assert proc.returncode == 2
    last = text.rstrip().splitlines()[-1]
    assert last.startswith(f"nothotdog-bot: cannot reach the Telegram Bot API at {closed}")
    assert "check TELEGRAM_BASE_URL" in last
    assert ("Traceback" in text) == (level == "DEBUG")
    if level == "INFO":
        assert len(text.splitlines()) <= 5, text


@pytest.mark.parametrize("port_setting", ["WEBHOOK_PORT", "HEALTH_PORT"])
async def test_port_in_use_names_the_setting(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path, port_setting: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = {port_setting: str(port)}
        if port_setting == "WEBHOOK_PORT":
            extra["WEBHOOK_URL"] = f"http://127.0.0.1:{port}/hook"
        env = bot_process_env(telegram, tiny_model_path, **extra)
        line = await _startup_failure(env, tmp_path)
    assert "already in use" in line and f"{port_setting} ({port})" in line


async def test_webhook_mode_answers_and_checks_the_secret_token(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/nothotdog/hook"
    settings = Settings(webhook_url=url, webhook_listen="127.0.0.1", webhook_port=port)
    await start_bot(webhook=webhook_options(settings, "s3cret_-token"))
    assert telegram.webhook == {"url": url, "secret_token": "s3cret_-token"}
    message = telegram.push_photo(solid(GREEN))  # the fake POSTs it to the webhook
    assert await telegram.reply_text(message) == GREEN_TEXT

    forged = {"update_id": 999, "message": {**{k: v for k, v in message.items()
                                               if k != "update_id"}, "message_id": 999}}
    async with aiohttp.ClientSession() as client:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with client.post(url, json=forged, headers=headers) as response:
                assert response.status == 403
    await telegram.quiet()
    assert len(telegram.sent) == 1
