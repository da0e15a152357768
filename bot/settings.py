"""Settings from environment variables and ``.env``: the only place the bot reads its config.

Each setting is one field below, with its type, default, bounds and help; its variable is the
field's alias, else its name in capitals. The environment wins over ``.env``, so a deployment
can override a checked-out file; an empty variable means the default. ``nothotdog-bot --help``
is made from the fields; tests/bot/test_settings.py holds .env.example and README to them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from nothotdog.bot.classifier import shipped_model_path
from nothotdog.contract.runtime import Runtime

TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
TELEGRAM_MAX_FILE_MB = 20  # Bot API getFile refuses bigger files
DEFAULT_MAX_FILE_MB = 10
TELEGRAM_BASE_FILE_URL = "https://api.telegram.org/file/bot"
# No longer read; set, they get a warning at start-up.
_GONE = ("BATCH_SIZE", "BATCH_WAIT_MS")

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _webhook_url(url: str) -> str:
    """https, as Telegram requires; plain http only to this machine (a local Bot API server)."""
    parts = urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise ValueError("must be a full https:// URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        raise ValueError("must start with https:// (Telegram delivers webhooks only over HTTPS; "
                         "put the bot behind a TLS-terminating reverse proxy)")  # fmt: skip
    return url


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split(value: Any) -> Any:
    return value.replace(",", " ").split() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ModelSettings(BaseSettings):
    """What running the model takes, all that ``nothotdog classify`` reads: the command line
    must not stop on a bad setting that only the bot uses."""

    # populate_by_name: code sets fields by name (token=...), the environment by variable;
    # allow_inf_nan: "inf" or "nan" is no number of seconds or probability.
    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, allow_inf_nan=False)

    # A factory called each time, so a test can stand in for the shipped model.
    model_path: Path = Field(default_factory=lambda: shipped_model_path(),
                             description="An exported nothotdog .onnx file; empty: the shipped "
                             "model")  # fmt: skip
    threshold: Annotated[float, AfterValidator(_probability)] | None = Field(
        None, description="Say hotdog when P(hotdog) >= this (0..1); empty: the model's own")
    onnx_threads: int = Field(0, ge=0, description="Inference threads per call; 0: all cores")
    runtime: Runtime = Field("auto", description="What runs the model: openvino, onnxruntime, "
                             "or auto (OpenVINO when installed, the faster on every CPU "
                             "measured)")  # fmt: skip

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, **_: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Settings(...) holds only what it is given, so no one's environment or .env leaks into
        # tests; load_settings() reads those.
        return (init_settings,)


class Settings(ModelSettings):
    token: str = Field("", validation_alias="TELEGRAM_BOT_TOKEN", repr=False,  # safe to log
                       description="The token from @BotFather (/newbot); required")  # fmt: skip
    show_confidence: bool = Field(True, description="Add the percentage to each verdict")
    show_why_button: bool = Field(False, description="A 'Why?' button under each verdict")
    # Telegram sends an album's photos as separate updates, within about a second.
    album_wait_s: float = Field(
        1.5, ge=0, description="Seconds after an album's last photo before its one answer")
    # NoDecode: a list a person types, not the JSON pydantic-settings expects for a set.
    allowed_chat_ids: Annotated[frozenset[int] | None, NoDecode, BeforeValidator(_split)] = Field(
        None, description="Comma-separated chat ids the bot answers; empty: everyone")
    outsider_reply_minutes: float = Field(
        10.0, ge=0, description="How often a private chat outside ALLOWED_CHAT_IDS is told no")
    feedback: bool = Field(True, description="'Right'/'Wrong' buttons under each verdict; votes "
                           "are kept in DATABASE_URL (/privacy says what)")  # fmt: skip
    # A relative SQLite path is relative to the folder the bot starts in.
    database_url: str = Field("sqlite:///data/nothotdog.sqlite3", description="Where votes and "
                              "/language choices are kept (SQLAlchemy URL): an SQLite file, or "
                              "postgresql+psycopg://... for several replicas")  # fmt: skip
    queue_size: int = Field(
        64, ge=1, description="Photos being downloaded or classified at once; more wait in line")
    max_wait_s: float = Field(30.0, ge=0, description="Longest a photo waits in line for memory "
                              "and a place before the user is told the bot is busy")  # fmt: skip
    # A photo let in just before a stop may wait MAX_WAIT_S in line, then needs a few seconds.
    stop_timeout_s: float = Field(45.0, ge=0, description="On SIGTERM or SIGINT, the longest "
                                  "the bot keeps answering the photos it has before it exits; "
                                  "the rest stay with Telegram for the next start")  # fmt: skip
    # MB = 1024 * 1024 bytes. The default keeps the bot under 300 MB (docs/reliability.md).
    memory_budget_mb: int = Field(
        48, ge=1, description="Memory for pictures in flight (files, decodes); >= 2 x MAX_FILE_MB")
    max_file_mb: int = Field(DEFAULT_MAX_FILE_MB, ge=1, le=TELEGRAM_MAX_FILE_MB,
                             description="Bigger image files are judged from Telegram's preview; "
                             f"at most {TELEGRAM_MAX_FILE_MB}, all a bot may download")  # fmt: skip
    # One: each onnxruntime call already uses every core; two at once add memory, not speed.
    worker_threads: int = Field(1, ge=1, description="Inference threads")
    # Two: a heavy decode takes one at most, so a small photo never waits behind a 40 MP PNG.
    decode_threads: int = Field(2, ge=1, description="Image decoding threads")
    log_level: Annotated[LogLevel, BeforeValidator(_upper)] = Field(
        "INFO", description="DEBUG (with tracebacks), INFO, WARNING or ERROR")
    webhook_url: Annotated[str, AfterValidator(_webhook_url)] = Field(
        "", description="Public https URL; setting it switches to webhooks; empty: polling")
    # Behind a reverse proxy on the same machine, unless told.
    webhook_listen: str = Field("127.0.0.1", description="Address the webhook server binds")
    webhook_port: int = Field(8443, ge=1, description="Port the webhook server binds")
    # Telegram's rule for setWebhook's secret_token.
    webhook_secret: str = Field("", pattern=r"^[A-Za-z0-9_-]{0,256}$", repr=False,
                                description="Sent by Telegram with each webhook request; "
                                "empty: random")  # fmt: skip
    base_url: str = Field(TELEGRAM_BASE_URL, validation_alias="TELEGRAM_BASE_URL",
                          description="Bot API URL (the token is appended)")  # fmt: skip
    base_file_url: str = Field(TELEGRAM_BASE_FILE_URL, validation_alias="TELEGRAM_BASE_FILE_URL",
                               description="Where files are downloaded from")  # fmt: skip
    health_port: int | None = Field(
        None, ge=1, description="Port for GET /healthz and /metrics; empty: off")
    health_listen: str = Field("127.0.0.1", description="Address for HEALTH_PORT")
    # Seconds to wait for the Bot API to answer (or a file to arrive) before retrying. No
    # description, so no variable: Telegram's defaults suit every deployment; tests shorten it.
    request_timeout: float = 10.0

    @model_validator(mode="after")
    def _budget_fits_a_file(self) -> Self:
        if self.memory_budget_mb < 2 * self.max_file_mb:
            raise ValueError(
                f"MEMORY_BUDGET_MB ({self.memory_budget_mb}) must be at least twice MAX_FILE_MB "
                f"({self.max_file_mb}), or files that big would never fit in it"
            )
        return self

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


def _variable(name: str, field: FieldInfo) -> str:
    return field.validation_alias if isinstance(field.validation_alias, str) else name.upper()


# Environment variable -> the Settings field it sets: each field with help is a setting.
VARIABLES = {_variable(n, f): n for n, f in Settings.model_fields.items() if f.description}
_S = TypeVar("_S", bound=ModelSettings)


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """The process environment (or ``environ``) over ``env_file`` if it exists, checked; an
    unset or empty variable keeps its default."""
    return _load(Settings, environ, env_file)


def load_model_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> ModelSettings:
    """MODEL_PATH, THRESHOLD, ONNX_THREADS and RUNTIME, read as ``load_settings`` reads them;
    the bot's other variables are not even parsed."""
    return _load(ModelSettings, environ, env_file)


def check_threshold(name: str, raw: str) -> float | None:
    """THRESHOLD's check, for the command line's ``name`` too; None when empty."""
    try:
        return ModelSettings(threshold=raw or None).threshold
    except ValidationError as exc:
        raise SettingsError(f"{name} {_problems(exc)['THRESHOLD']}") from None


def _load(cls: type[_S], environ: Mapping[str, str] | None, env_file: str | Path | None) -> _S:
    found = {k.upper(): v for k, v in DotEnvSettingsSource(cls, env_file=env_file).env_vars.items()}
    found.update(os.environ if environ is None else environ)
    if cls is Settings and any(found.get(name) for name in _GONE):
        log.warning("%s are gone and ignored; remove them", " and ".join(_GONE))
    given = {name: raw for name, field in cls.model_fields.items()
             if field.description and (raw := (found.get(_variable(name, field)) or "").strip())}
    try:
        return cls(**given)  # by field name (populate_by_name); empty variables left out
    except ValidationError as exc:
        problems = (f"{name} {what}".strip() for name, what in _problems(exc).items())
        raise SettingsError("; ".join(problems)) from None


_WHAT = {
    "int_parsing": "must be a whole number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be {expected}",
    "string_pattern_mismatch": "must match {pattern}",
    "value_error": "{error}",
}


def _problems(exc: ValidationError) -> dict[str, str]:
    """What is wrong, by variable, once each ("": a check of several, whose message names
    them); a secret's value is not shown."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        what = _WHAT.get(error["type"], error["msg"]).format(**error.get("ctx", {}))
        key = str(error["loc"][0]) if error["loc"] else ""
        name = VARIABLES.get(key, key)  # the loc is the alias when a value came by it
        if field := Settings.model_fields.get(name):
            key = _variable(name, field)
            what += f", got {error['input']!r}" if field.repr else ""
        problems.setdefault(key, what)
    return problems


def settings_help() -> str:
    """Every setting, its help and default, for ``nothotdog-bot --help``."""
    width = max(map(len, VARIABLES))
    lines = []
    for variable, name in VARIABLES.items():
        field = Settings.model_fields[name]
        text, default = field.description or "", field.default
        if field.default_factory is None and default not in (None, ""):  # else the text says
            text += f" (default: {str(default).lower() if isinstance(default, bool) else default})"
        lines.append(textwrap.fill(text, 100, initial_indent=f"  {variable:<{width}}  ",
                                   subsequent_indent=" " * (width + 4)))  # fmt: skip
    return "\n".join(lines)
