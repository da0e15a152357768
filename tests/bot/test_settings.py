"""Settings: environment over .env over defaults, clear errors, and the docs list them all."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from nothotdog.bot.settings import (
    VARIABLES,
    Settings,
    SettingsError,
    load_model_settings,
    load_settings,
    settings_help,
    shipped_model_path,
)

REPO = Path(__file__).resolve().parents[2]


def test_defaults_need_nothing() -> None:
    settings = load_settings(environ={}, env_file=None)
    assert settings == Settings()
    assert settings.model_path == shipped_model_path()  # not relative to the cwd
    assert settings.show_confidence is True
    assert settings.show_why_button is False
    assert settings.allowed_chat_ids is None
    assert not settings.use_webhook
    assert settings.base_url == "https://api.telegram.org/bot"
    assert (settings.queue_size, settings.max_wait_s) == (64, 30.0)


def test_settings_built_in_code_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build Settings(...) themselves: a developer's environment must not leak in."""
    monkeypatch.setenv("QUEUE_SIZE", "5")
    assert Settings().queue_size == 64
    assert Settings(queue_size=7, token="1:abc").queue_size == 7
    assert load_settings(env_file=None).queue_size == 5
    with pytest.raises(ValidationError):
        Settings().queue_size = 3  # type: ignore[misc]  # frozen


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "TELEGRAM_BOT_TOKEN=123:from-file\nQUEUE_SIZE=4\nSHOW_CONFIDENCE=off\n"
        "ALLOWED_CHAT_IDS=1, -1002, 3\nTHRESHOLD=0.7\nMAX_WAIT_S=5\n"
    )
    settings = load_settings(environ={"QUEUE_SIZE": "16", "SHOW_WHY_BUTTON": "true",
                                      "MAX_WAIT_S": ""}, env_file=env_file)
    assert settings.token == "123:from-file"
    assert settings.queue_size == 16
    assert settings.max_wait_s == 30.0  # empty means the default, even over the file
    assert settings.show_confidence is False
    assert settings.show_why_button is True
    assert settings.allowed_chat_ids == frozenset({1, -1002, 3})
    assert settings.threshold == 0.7
    assert "from-file" not in repr(settings)  # safe to log


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("QUEUE_SIZE", "0"),
        ("QUEUE_SIZE", "eight"),
        ("MAX_WAIT_S", "-1"),
        ("MAX_WAIT_S", "soon"),
        ("ONNX_THREADS", "-1"),
        ("THRESHOLD", "1.5"),
        ("SHOW_CONFIDENCE", "maybe"),
        ("SHOW_WHY_BUTTON", "sometimes"),
        ("ALLOWED_CHAT_IDS", "12,abc"),
        ("LOG_LEVEL", "LOUD"),
        ("WEBHOOK_URL", "example.com/hook"),
        ("WEBHOOK_URL", "http://bot.example.com/hook"),
        ("WEBHOOK_SECRET", "has spaces"),
        ("MAX_FILE_MB", "25"),
        ("MEMORY_BUDGET_MB", "12"),
        ("DECODE_THREADS", "0"),
        ("OUTSIDER_REPLY_MINUTES", "soon"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(environ={name: value}, env_file=None)


def test_errors_are_one_sentence_per_variable() -> None:
    with pytest.raises(SettingsError) as bad:
        load_settings(environ={"QUEUE_SIZE": "x", "THRESHOLD": "7", "ALBUM_WAIT_S": "nan",
                               "WEBHOOK_SECRET": "not secret"}, env_file=None)
    message = str(bad.value)
    assert "QUEUE_SIZE must be a whole number, got 'x'" in message
    assert "THRESHOLD must be between 0 and 1, got" in message
    assert "ALBUM_WAIT_S must be a finite number" in message
    assert "WEBHOOK_SECRET must match" in message and "not secret" not in message
    assert "\n" not in message and "queue_size" not in message  # variables, not field names


def test_removed_batch_settings_only_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = load_settings(environ={"BATCH_SIZE": "8"}, env_file=None)
    assert settings == Settings()
    assert "BATCH_SIZE and BATCH_WAIT_MS are gone and ignored; remove them" in caplog.text


def test_token_is_required_only_to_run_the_bot() -> None:
    settings = load_settings(environ={}, env_file=None)
    with pytest.raises(SettingsError, match=r"TELEGRAM_BOT_TOKEN.*@BotFather"):
        settings.require_token()


def test_webhook_needs_https_except_to_this_machine() -> None:
    with pytest.raises(SettingsError, match=r"WEBHOOK_URL must start with https://"):
        load_settings(environ={"WEBHOOK_URL": "http://203.0.113.7:8443/hook"}, env_file=None)
    for local in ("http://127.0.0.1:8443/hook", "http://localhost/hook", "http://[::1]/hook"):
        assert load_settings(environ={"WEBHOOK_URL": local}, env_file=None).use_webhook
    settings = load_settings(environ={"WEBHOOK_URL": "https://bot.example.com/hook"},
                             env_file=None)
    assert settings.webhook_listen == "127.0.0.1"  # not every interface, unless told


def test_memory_settings_in_mb() -> None:
    settings = load_settings(environ={"MEMORY_BUDGET_MB": "64", "MAX_FILE_MB": "20",
                                      "DECODE_THREADS": "3", "OUTSIDER_REPLY_MINUTES": "0.5"},
                             env_file=None)
    assert (settings.memory_budget_mb, settings.max_file_mb) == (64, 20)
    assert (settings.decode_threads, settings.outsider_reply_minutes) == (3, 0.5)


def test_webhook_path_comes_from_the_url() -> None:
    settings = load_settings(environ={"WEBHOOK_URL": "https://bot.example.com/tg/hook"},
                             env_file=None)
    assert settings.use_webhook
    assert settings.webhook_path == "tg/hook"


def test_env_example_lists_every_setting_with_a_comment() -> None:
    example = (REPO / ".env.example").read_text()
    listed = re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE)
    assert sorted(listed) == sorted(VARIABLES)
    lines = example.splitlines()
    for name in VARIABLES:
        index = next(i for i, line in enumerate(lines) if re.match(rf"^#?\s*{name}=", line))
        assert lines[index - 1].startswith("#"), f"{name} needs a comment above it"
    # And the example loads as it is (after putting in a token).
    assert load_settings(environ={}, env_file=REPO / ".env.example").token == ""


def _table_names(text: str) -> list[str]:
    rows = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([A-Z_]+)`", row)]


def test_settings_page_covers_every_setting_and_the_readme_names_only_real_ones() -> None:
    assert sorted(_table_names((REPO / "docs" / "settings.md").read_text())) == sorted(VARIABLES)
    readme = (REPO / "README.md").read_text()
    table = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    assert set(_table_names(table)) <= set(VARIABLES) and "TELEGRAM_BOT_TOKEN" in table


def test_help_shows_each_setting_with_its_help_and_default() -> None:
    text = " ".join(settings_help().split())
    for name, field in VARIABLES.items():
        assert f"{name} {Settings.model_fields[field].description}" in text
    assert "QUEUE_SIZE Photos being downloaded or classified at once; more wait in line " \
        "(default: 64)" in text
    assert "SHOW_CONFIDENCE Add the percentage to each verdict (default: true)" in text


def test_the_command_line_reads_only_the_model_settings() -> None:
    """``nothotdog classify`` must not stop on a bad setting only the bot uses."""
    env = {"WEBHOOK_PORT": "abc", "MAX_FILE_MB": "99", "THRESHOLD": "0.7", "ONNX_THREADS": "1"}
    with pytest.raises(SettingsError, match="WEBHOOK_PORT"):
        load_settings(environ=env, env_file=None)
    model = load_model_settings(environ=env, env_file=None)
    assert (model.threshold, model.onnx_threads) == (0.7, 1)
    assert model.model_path == shipped_model_path()
    with pytest.raises(SettingsError, match="THRESHOLD must be between 0 and 1"):
        load_model_settings(environ={"THRESHOLD": "7"}, env_file=None)
