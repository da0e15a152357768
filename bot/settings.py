"""Settings from environment variables and ``.env``: the only place the bot reads its config.

The process environment wins over ``.env``, so a deployment can override a checked-out file.
Every variable here is listed, with a comment, in ``.env.example``.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

MODEL_FILE = "nothotdog.onnx"
# The shipped model's package: models/ installed as bot/shipped/ (see pyproject.toml).
SHIPPED_PACKAGE = "bot.shipped"
TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
TELEGRAM_BASE_FILE_URL = "https://api.telegram.org/file/bot"
TELEGRAM_MAX_FILE_MB = 20  # getFile refuses bigger files
# Telegram's rule for setWebhook's secret_token.
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


def shipped_model_path() -> Path:
    """The model that ships with nothotdog, wherever the bot runs from.

    An installed package has it as package data (``bot/shipped/``); a checkout or an editable
    install reads ``models/`` beside ``bot/``, where ``make model`` writes. Never the cwd.
    """
    try:
        packaged = Path(str(importlib.resources.files(SHIPPED_PACKAGE) / MODEL_FILE))
    except (ModuleNotFoundError, TypeError):  # a checkout: bot/shipped/ is not a package here
        packaged = None
    if packaged is not None and packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[1] / "models" / MODEL_FILE


@dataclass(frozen=True)
class Settings:
    token: str = field(default="", repr=False)  # repr=False: safe to log Settings
    model_path: Path = field(default_factory=shipped_model_path)
    threshold: float | None = None  # None: the model's own (from its metadata)
    show_confidence: bool = True
    show_why_button: bool = False  # an inline "Why?" button under each verdict (bot/why.py)
    # An album's photos arrive as separate updates; its one answer waits this long after the
    # last one (bot/albums.py). Telegram sends an album's items within about a second.
    album_wait_s: float = 1.5
    # Two: on small machines VGG16 already fills every core at batch 1, so bigger batches add
    # memory (bench: 609 MB peak at 8, 236 MB at 2, 181 MB at 1) and no photos per second.
    batch_size: int = 2
    batch_wait_ms: float = 5.0
    queue_size: int = 64
    # One: each onnxruntime call already uses every core; two at once only doubles the
    # activation memory (bench: 358 MB vs 255 MB peak RSS at the same photos/s).
    worker_threads: int = 1
    # Two: heavy decodes (big files, many pixels) take one at most, so a small photo's decode
    # never waits behind a 40 MP PNG. Decoding never runs on the inference thread.
    decode_threads: int = 2
    # Bytes (MB = 1024 * 1024) held for pictures in flight: files and decodes. See
    # docs/reliability.md for what it guarantees; the default keeps the bot under 300 MB.
    memory_budget_mb: int = 48
    # Image files above this are judged from Telegram's preview, or refused without one.
    max_file_mb: int = 10
    # A private chat outside ALLOWED_CHAT_IDS is told "no" at most once per this many minutes.
    outsider_reply_minutes: float = 10.0
    onnx_threads: int = 0  # 0: onnxruntime picks (all cores)
    log_level: str = "INFO"
    allowed_chat_ids: frozenset[int] | None = None  # None: everyone
    webhook_url: str = ""  # empty: long polling
    webhook_listen: str = "127.0.0.1"  # behind a reverse proxy on the same machine
    webhook_port: int = 8443
    webhook_secret: str = field(default="", repr=False)
    base_url: str = TELEGRAM_BASE_URL
    base_file_url: str = TELEGRAM_BASE_FILE_URL
    health_port: int | None = None  # None: no /healthz and /metrics
    health_listen: str = "127.0.0.1"
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


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read the process environment over ``env_file`` (if it exists) into checked Settings."""
    env = _read_env(environ, env_file)

    def get(name: str) -> str:
        return env.get(name, "")

    model = _model_settings(env)
    settings = Settings(
        token=get("TELEGRAM_BOT_TOKEN"),
        model_path=model.model_path,
        threshold=model.threshold,
        show_confidence=_bool("SHOW_CONFIDENCE", get("SHOW_CONFIDENCE"), True),
        show_why_button=_bool("SHOW_WHY_BUTTON", get("SHOW_WHY_BUTTON"), False),
        album_wait_s=_float("ALBUM_WAIT_S", get("ALBUM_WAIT_S"), 1.5, minimum=0.0),
        batch_size=_int("BATCH_SIZE", get("BATCH_SIZE"), 2, minimum=1),
        batch_wait_ms=_float("BATCH_WAIT_MS", get("BATCH_WAIT_MS"), 5.0, minimum=0.0),
        queue_size=_int("QUEUE_SIZE", get("QUEUE_SIZE"), 64, minimum=1),
        worker_threads=_int("WORKER_THREADS", get("WORKER_THREADS"), 1, minimum=1),
        decode_threads=_int("DECODE_THREADS", get("DECODE_THREADS"), 2, minimum=1),
        memory_budget_mb=_int("MEMORY_BUDGET_MB", get("MEMORY_BUDGET_MB"), 48, minimum=1),
        max_file_mb=_int("MAX_FILE_MB", get("MAX_FILE_MB"), 10, minimum=1),
        outsider_reply_minutes=_float(
            "OUTSIDER_REPLY_MINUTES", get("OUTSIDER_REPLY_MINUTES"), 10.0, minimum=0.0
        ),
        onnx_threads=model.onnx_threads,
        log_level=_log_level(get("LOG_LEVEL") or "INFO"),
        allowed_chat_ids=_chat_ids(get("ALLOWED_CHAT_IDS")),
        webhook_url=get("WEBHOOK_URL"),
        webhook_listen=get("WEBHOOK_LISTEN") or "127.0.0.1",
        webhook_port=_int("WEBHOOK_PORT", get("WEBHOOK_PORT"), 8443, minimum=1),
        webhook_secret=get("WEBHOOK_SECRET"),
        base_url=get("TELEGRAM_BASE_URL") or TELEGRAM_BASE_URL,
        base_file_url=get("TELEGRAM_BASE_FILE_URL") or TELEGRAM_BASE_FILE_URL,
        health_port=_int("HEALTH_PORT", get("HEALTH_PORT"), 0, minimum=1) or None,
        health_listen=get("HEALTH_LISTEN") or "127.0.0.1",
    )
    if settings.webhook_url:
        _check_webhook_url(settings.webhook_url)
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
    if settings.webhook_secret and not _SECRET_RE.match(settings.webhook_secret):
        raise SettingsError(
            "WEBHOOK_SECRET may hold only letters, digits, '_' and '-' (1 to 256 characters)"
        )
    return settings


@dataclass(frozen=True)
class ModelSettings:
    """The three settings the command line needs: it must not fail on the bot's others."""

    model_path: Path = field(default_factory=shipped_model_path)
    threshold: float | None = None
    onnx_threads: int = 0


def load_model_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> ModelSettings:
    """MODEL_PATH, THRESHOLD and ONNX_THREADS only, read and checked as ``load_settings`` does."""
    return _model_settings(_read_env(environ, env_file))


def _read_env(environ: Mapping[str, str] | None, env_file: str | Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return {k: v.strip() for k, v in values.items()}


def _model_settings(env: Mapping[str, str]) -> ModelSettings:
    def get(name: str) -> str:
        return env.get(name, "")

    path = get("MODEL_PATH")
    return ModelSettings(
        model_path=Path(path) if path else shipped_model_path(),
        threshold=check_threshold("THRESHOLD", get("THRESHOLD")),
        onnx_threads=_int("ONNX_THREADS", get("ONNX_THREADS"), 0, minimum=0),
    )


def _check_webhook_url(url: str) -> None:
    """https, as Telegram requires; plain http only to this machine (a local Bot API server)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"WEBHOOK_URL must be a full https:// URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise SettingsError(
            f"WEBHOOK_URL must start with https:// (Telegram delivers webhooks only over HTTPS; "
            f"put the bot behind a TLS-terminating reverse proxy), got {url!r}"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _int(name: str, raw: str, default: int, minimum: int) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(name: str, raw: str, default: float, minimum: float) -> float:
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # also rejects NaN
        raise SettingsError(f"{name} must be at least {minimum}, got {raw}")
    return value


def check_threshold(name: str, raw: str) -> float | None:
    """A probability in [0, 1], or None when empty; the CLI checks --threshold with it too."""
    if not raw:
        return None
    value = _float(name, raw, 0.0, minimum=0.0)
    if value > 1.0:
        raise SettingsError(f"{name} must be between 0 and 1, got {raw}")
    return value


def _bool(name: str, raw: str, default: bool) -> bool:
    if not raw:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


def _chat_ids(raw: str) -> frozenset[int] | None:
    if not raw:
        return None
    ids = set()
    for part in re.split(r"[,\s]+", raw):
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise SettingsError(
                f"ALLOWED_CHAT_IDS must be chat ids separated by commas, got {part!r}"
            ) from None
    return frozenset(ids)


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
    ("BATCH_SIZE", "2", "most photos in one onnxruntime call"),
    ("BATCH_WAIT_MS", "5", "how long a batch waits for more photos"),
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
