"""Settings from environment variables and ``.env``: the only place the bot reads its config.

The process environment wins over ``.env``, so a deployment can override a checked-out file.
Each field names its variable and parser beside its default (``_env``), so a variable cannot
be read without being checked; every one is listed, with a comment, in ``.env.example``.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from nothotdog.contract.layout import DEFAULT_MAX_FILE_MB, TELEGRAM_MAX_FILE_MB

MODEL_FILE = "nothotdog.onnx"
# The shipped model's package: models/ installed as nothotdog/bot/shipped/ (see pyproject.toml).
SHIPPED_PACKAGE = "nothotdog.bot.shipped"
TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
TELEGRAM_BASE_FILE_URL = "https://api.telegram.org/file/bot"
# Telegram's rule for setWebhook's secret_token.
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}  # fmt: skip


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


def shipped_model_path() -> Path:
    """The model that ships with nothotdog, wherever the bot runs from.

    An installed package has it as package data (``nothotdog/bot/shipped/``); a checkout or an
    editable install reads ``models/`` beside ``bot/``, where ``make model`` writes. Never the cwd.
    """
    try:
        packaged = Path(str(importlib.resources.files(SHIPPED_PACKAGE) / MODEL_FILE))
    except (ModuleNotFoundError, TypeError):  # a checkout: nothotdog.bot.shipped isn't a package
        packaged = None
    if packaged is not None and packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[1] / "models" / MODEL_FILE


# A parser gets the variable's non-empty value; its ValueError says what is wrong, and the
# loader puts the variable's name in front.
Parse = Callable[[str], Any]


def _number(kind: type[int] | type[float], minimum: float) -> Parse:
    def parse(raw: str) -> int | float:
        try:
            value = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ValueError(f"must be {what}, got {raw!r}") from None
        if not value >= minimum:  # also rejects NaN
            raise ValueError(f"must be at least {minimum}, got {raw}")
        return value

    return parse


def _probability(raw: str) -> float:
    if _number(float, 0.0)(raw) > 1.0:
        raise ValueError(f"must be between 0 and 1, got {raw}")
    return float(raw)


def _bool(raw: str) -> bool:
    if raw.lower() not in _BOOLS:
        raise ValueError(f"must be true or false, got {raw!r}")
    return _BOOLS[raw.lower()]


def _log_level(raw: str) -> str:
    if raw.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return raw.upper()


def _chat_ids(raw: str) -> frozenset[int]:
    ids = set()
    for part in filter(None, re.split(r"[,\s]+", raw)):
        try:
            ids.add(int(part))
        except ValueError:
            raise ValueError(f"must be chat ids separated by commas, got {part!r}") from None
    return frozenset(ids)


def _webhook_url(url: str) -> str:
    """https, as Telegram requires; plain http only to this machine (a local Bot API server)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be a full https:// URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            "must start with https:// (Telegram delivers webhooks only over HTTPS; put the bot "
            f"behind a TLS-terminating reverse proxy), got {url!r}"
        )
    return url


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(raw: str) -> str:
    if not _SECRET_RE.match(raw):
        raise ValueError("may hold only letters, digits, '_' and '-' (1 to 256 characters)")
    return raw


def _env(name: str, parse: Parse, default: Any = None, **kwargs: Any) -> Any:
    """A field read from environment variable ``name`` through ``parse``."""
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return field(metadata={"env": name, "parse": parse}, **kwargs)


def _parse(name: str, raw: str, parse: Parse) -> Any:
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} {exc}") from None


def check_threshold(name: str, raw: str) -> float | None:
    """A probability in [0, 1], or None when empty; the CLI checks --threshold with it too."""
    return _parse(name, raw, _probability) if raw else None


@dataclass(frozen=True)
class Settings:
    # repr=False: safe to log Settings
    token: str = _env("TELEGRAM_BOT_TOKEN", str, "", repr=False)
    # Looked up at each call (not bound here), so a test can stand in for the shipped model.
    model_path: Path = _env("MODEL_PATH", Path, default_factory=lambda: shipped_model_path())  # noqa: RUF009
    # None: the model's own (from its metadata)
    threshold: float | None = _env("THRESHOLD", _probability)
    show_confidence: bool = _env("SHOW_CONFIDENCE", _bool, True)
    # An inline "Why?" button under each verdict (bot/why.py)
    show_why_button: bool = _env("SHOW_WHY_BUTTON", _bool, False)
    # An album's photos arrive as separate updates; its one answer waits this long after the
    # last one (bot/albums.py). Telegram sends an album's items within about a second.
    album_wait_s: float = _env("ALBUM_WAIT_S", _number(float, 0.0), 1.5)
    # Deprecated, ignored (a warning at start-up): one photo per onnxruntime call. Batches
    # added memory (bench: 609 MB peak at 8, 236 MB at 2, 181 MB at 1) and at most 1.09x.
    batch_size: int | None = _env("BATCH_SIZE", _number(int, 1))
    batch_wait_ms: float | None = _env("BATCH_WAIT_MS", _number(float, 0.0))
    queue_size: int = _env("QUEUE_SIZE", _number(int, 1), 64)
    max_wait_s: float = _env("MAX_WAIT_S", _number(float, 0.0), 30.0)
    # One: each onnxruntime call already uses every core; two at once add memory, not speed
    # (make bench, 2-core EPYC, 50 chats: 7.6 vs 7.5 photos/s, 174 vs 201 MB peak RSS).
    worker_threads: int = _env("WORKER_THREADS", _number(int, 1), 1)
    # Two: heavy decodes (big files, many pixels) take one at most, so a small photo's decode
    # never waits behind a 40 MP PNG. Decoding never runs on the inference thread.
    decode_threads: int = _env("DECODE_THREADS", _number(int, 1), 2)
    # Bytes (MB = 1024 * 1024) held for pictures in flight: files and decodes. See
    # docs/reliability.md for what it guarantees; the default keeps the bot under 300 MB.
    memory_budget_mb: int = _env("MEMORY_BUDGET_MB", _number(int, 1), 48)
    # Image files above this are judged from Telegram's preview, or refused without one.
    max_file_mb: int = _env("MAX_FILE_MB", _number(int, 1), DEFAULT_MAX_FILE_MB)
    # A private chat outside ALLOWED_CHAT_IDS is told "no" at most once per this many minutes.
    outsider_reply_minutes: float = _env("OUTSIDER_REPLY_MINUTES", _number(float, 0.0), 10.0)
    # 0: onnxruntime picks (all cores)
    onnx_threads: int = _env("ONNX_THREADS", _number(int, 0), 0)
    log_level: str = _env("LOG_LEVEL", _log_level, "INFO")
    # None: everyone
    allowed_chat_ids: frozenset[int] | None = _env("ALLOWED_CHAT_IDS", _chat_ids)
    webhook_url: str = _env("WEBHOOK_URL", _webhook_url, "")  # empty: long polling
    # Behind a reverse proxy on the same machine
    webhook_listen: str = _env("WEBHOOK_LISTEN", str, "127.0.0.1")
    webhook_port: int = _env("WEBHOOK_PORT", _number(int, 1), 8443)
    webhook_secret: str = _env("WEBHOOK_SECRET", _secret, "", repr=False)
    base_url: str = _env("TELEGRAM_BASE_URL", str, TELEGRAM_BASE_URL)
    base_file_url: str = _env("TELEGRAM_BASE_FILE_URL", str, TELEGRAM_BASE_FILE_URL)
    health_port: int | None = _env("HEALTH_PORT", _number(int, 1))  # None: no /healthz, /metrics
    health_listen: str = _env("HEALTH_LISTEN", str, "127.0.0.1")
    # Seconds to wait for the Bot API to answer (or a file to arrive) before retrying. Not an
    # environment variable: Telegram's defaults suit every deployment; tests shorten it.
    request_timeout: float = 10.0

    @property
    def use_webhook(self) -> bool:
        return bool(self.webhook_url)

    @property
    def webhook_path(self) -> str:
        """The path Telegram will POST to: the path part of WEBHOOK_URL."""
        return urlsplit(self.webhook_url).path.strip("/")

    def require_token(self) -> str:
        if not self.token:
            raise SettingsError(
                "TELEGRAM_BOT_TOKEN is not set. Put the token that @BotFather gave you in the "
                "environment or in .env in this folder (in a checkout: cp .env.example .env); "
                "see README 'Create the bot in Telegram', or nothotdog-bot --help."
            )
        return self.token


# Environment variable -> the Settings field it sets.
VARIABLES = {f.metadata["env"]: f for f in fields(Settings) if "env" in f.metadata}


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read the process environment over ``env_file`` (if it exists) into checked Settings;
    an unset or empty variable keeps its field's default."""
    settings = Settings(**_fields(_read_env(environ, env_file), VARIABLES))
    if settings.max_file_mb > TELEGRAM_MAX_FILE_MB:
        raise SettingsError(
            f"MAX_FILE_MB must be at most {TELEGRAM_MAX_FILE_MB} (Telegram lets bots download "
            f"no more), got {settings.max_file_mb}"
        )
    if settings.memory_budget_mb < 2 * settings.max_file_mb:
        raise SettingsError(
            f"MEMORY_BUDGET_MB ({settings.memory_budget_mb}) must be at least twice MAX_FILE_MB "
            f"({settings.max_file_mb}), or files that big would never fit in it"
        )
    return settings


@dataclass(frozen=True)
class ModelSettings:
    """The three settings the command line needs: it must not fail on the bot's others.

    Fields of Settings by the same names, without defaults: ``load_model_settings`` takes
    those from Settings, so each default is written once."""

    model_path: Path
    threshold: float | None
    onnx_threads: int


def load_model_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> ModelSettings:
    """MODEL_PATH, THRESHOLD and ONNX_THREADS only, read and checked as ``load_settings`` does;
    an unset one keeps its Settings default. The bot's other variables are not even parsed."""
    wanted = [f.name for f in fields(ModelSettings)]
    names = [name for name, f in VARIABLES.items() if f.name in wanted]
    settings = Settings(**_fields(_read_env(environ, env_file), names))
    return ModelSettings(**{name: getattr(settings, name) for name in wanted})


def _read_env(environ: Mapping[str, str] | None, env_file: str | Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return {k: v.strip() for k, v in values.items()}


def _fields(env: Mapping[str, str], names: Iterable[str]) -> dict[str, Any]:
    """The Settings fields of the variables ``names`` that are set, parsed and checked."""
    return {
        VARIABLES[name].name: _parse(name, raw, VARIABLES[name].metadata["parse"])
        for name in names
        if (raw := env.get(name, ""))
    }


# Every setting, its default and what it does, for ``nothotdog-bot --help`` (an installed bot
# has no .env.example beside it). tests/bot/test_settings.py keeps it in step with that file.
SETTINGS_HELP: tuple[tuple[str, str, str], ...] = (
    ("TELEGRAM_BOT_TOKEN", "required", "the token from @BotFather (/newbot)"),
    ("MODEL_PATH", "the shipped model", "an exported nothotdog .onnx file"),
    ("THRESHOLD", "the model's", "say hotdog when P(hotdog) >= this (0..1)"),
    ("SHOW_CONFIDENCE", "true", "add the percentage to each verdict"),
    ("SHOW_WHY_BUTTON", "false", "a 'Why?' button under each verdict"),
    ("ALBUM_WAIT_S", "1.5", "seconds after an album's last photo before its one answer"),
    ("ALLOWED_CHAT_IDS", "everyone", "comma-separated chat ids the bot answers"),
    ("OUTSIDER_REPLY_MINUTES", "10", "how often an outsider is told no"),
    ("BATCH_SIZE", "unset", "deprecated, ignored: one photo per onnxruntime call"),
    ("BATCH_WAIT_MS", "unset", "deprecated, ignored"),
    ("QUEUE_SIZE", "64", "photos in flight before users get 'busy'"),
    ("MEMORY_BUDGET_MB", "48", "memory for pictures in flight (>= 2 x MAX_FILE_MB)"),
    ("MAX_FILE_MB", "10", "bigger image files are judged from Telegram's preview (<= 20)"),
    ("WORKER_THREADS", "1", "inference threads"),
    ("DECODE_THREADS", "2", "image decoding threads"),
    ("ONNX_THREADS", "0", "onnxruntime threads per call; 0: all cores"),
    ("LOG_LEVEL", "INFO", "DEBUG (with tracebacks), INFO, WARNING or ERROR"),
    ("WEBHOOK_URL", "empty: polling", "public https URL; switches to webhook mode"),
    ("WEBHOOK_LISTEN", "127.0.0.1", "address the webhook server binds"),
    ("WEBHOOK_PORT", "8443", "port the webhook server binds"),
    ("WEBHOOK_SECRET", "random", "secret Telegram sends with each webhook request"),
    ("TELEGRAM_BASE_URL", TELEGRAM_BASE_URL, "Bot API URL (token appended)"),
    ("TELEGRAM_BASE_FILE_URL", TELEGRAM_BASE_FILE_URL, "where files are downloaded from"),
    ("HEALTH_PORT", "off", "port for GET /healthz and /metrics"),
    ("HEALTH_LISTEN", "127.0.0.1", "address for HEALTH_PORT"),
)


def settings_help() -> str:
    """The settings as an aligned table, for ``--help``."""
    width = max(len(name) for name, _, _ in SETTINGS_HELP)
    return "\n".join(
        f"  {name:<{width}}  {what} (default: {default})" for name, default, what in SETTINGS_HELP
    )
