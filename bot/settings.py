"""Settings from environment variables and ``.env``: the only place the bot reads its config.

The process environment wins over ``.env``, so a deployment can override a checked-out file.
Each field names its variable and parser beside its default (``_env``), so a variable cannot
be read without being checked; every one is listed, with a comment, in ``.env.example``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from contract.layout import DEFAULT_MAX_FILE_MB, TELEGRAM_MAX_FILE_MB

DEFAULT_MODEL_PATH = Path("models/nothotdog.onnx")
TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
TELEGRAM_BASE_FILE_URL = "https://api.telegram.org/file/bot"
# Telegram's rule for setWebhook's secret_token.
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}  # fmt: skip


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


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
    return field(default=default, metadata={"env": name, "parse": parse}, **kwargs)


@dataclass(frozen=True)
class Settings:
    # repr=False: safe to log Settings
    token: str = _env("TELEGRAM_BOT_TOKEN", str, "", repr=False)
    model_path: Path = _env("MODEL_PATH", Path, DEFAULT_MODEL_PATH)  # noqa: RUF009 (a field)
    # None: the model's own (from its metadata)
    threshold: float | None = _env("THRESHOLD", _probability)
    show_confidence: bool = _env("SHOW_CONFIDENCE", _bool, True)
    # An inline "Why?" button under each verdict (bot/why.py)
    show_why_button: bool = _env("SHOW_WHY_BUTTON", _bool, False)
    # Deprecated, ignored (a warning at start-up): one photo per onnxruntime call. Batches
    # added memory (bench: 609 MB peak at 8, 236 MB at 2, 181 MB at 1) and at most 1.09x.
    batch_size: int | None = _env("BATCH_SIZE", _number(int, 1))
    batch_wait_ms: float | None = _env("BATCH_WAIT_MS", _number(float, 0.0))
    queue_size: int = _env("QUEUE_SIZE", _number(int, 1), 64)
    # One: each onnxruntime call already uses every core; two at once only doubles the
    # activation memory (bench: 358 MB vs 255 MB peak RSS at the same photos/s).
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
                "TELEGRAM_BOT_TOKEN is not set. Copy .env.example to .env and put in the token "
                "that @BotFather gave you (see README: 'Create the bot in Telegram')."
            )
        return self.token


# Environment variable -> the Settings field it sets.
VARIABLES = {f.metadata["env"]: f for f in fields(Settings) if "env" in f.metadata}


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read the process environment over ``env_file`` (if it exists) into checked Settings;
    an unset or empty variable keeps its field's default."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    parsed: dict[str, Any] = {}
    for name, f in VARIABLES.items():
        if raw := values.get(name, "").strip():
            try:
                parsed[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                raise SettingsError(f"{name} {exc}") from None
    settings = Settings(**parsed)
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
