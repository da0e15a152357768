"""Logging set-up: one line per event, key=value fields, and secrets scrubbed from every line.

Scrubbing happens in the formatter, after tracebacks are rendered, so a token inside an
exception message or a URL (httpx puts it in request URLs) never reaches the log.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "[REDACTED]"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self.secrets = secret_forms(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Every form a secret takes in text, longest first so a whole one is scrubbed whole.

    File download URLs carry the token URL-encoded (``123%3AAAE...``), so the literal token
    alone is not enough; a bot token's private half (after the ``:``) is scrubbed wherever it
    appears, however the colon was written. The numeric bot id before it is public.
    """
    forms = set()
    for secret in secrets:
        if not secret:
            continue
        forms.update({secret, quote(secret, safe="")})
        bot_id, colon, private = secret.partition(":")
        if colon and bot_id.isdigit() and len(private) >= 8:
            forms.add(private)
    return sorted(forms, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secret_forms(secrets):
        text = text.replace(secret, REDACTED)
    return text


def fields(**values: object) -> str:
    """``key=value`` pairs for a log line that both people and ``grep``/``awk`` can read."""
    parts = []
    for key, value in values.items():
        if isinstance(value, float):
            value = f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}"
        text = str(value)
        parts.append(f"{key}={text!r}" if (" " in text or not text) else f"{key}={text}")
    return " ".join(parts)


class NoTraceback(logging.Filter):
    """Keep the message but drop the traceback, at levels above DEBUG, for a library's errors
    whose one line says it all (a network error, a rejected token): main explains them.

    The exception's own line is kept at the end of the message, so nothing but the traceback
    is lost; LOG_LEVEL=DEBUG shows every traceback.
    """

    def __init__(self, quiet: tuple[type[BaseException], ...], loggers: tuple[str, ...]) -> None:
        super().__init__()
        self.quiet = quiet
        self.loggers = loggers

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if (
            isinstance(exc, self.quiet)
            and record.levelno > logging.DEBUG
            and logging.getLogger().level > logging.DEBUG
            and record.name.partition(".")[0] in self.loggers
        ):
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def setup_logging(
    level: str = "INFO",
    secrets: Iterable[str] = (),
    quiet: tuple[type[BaseException], ...] = (),
    quiet_loggers: tuple[str, ...] = ("telegram",),
) -> None:
    """Log to stderr; ``quiet`` exceptions from ``quiet_loggers`` (top-level names) are logged
    without traceback unless ``level`` is DEBUG."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
    handler.addFilter(NoTraceback(quiet, quiet_loggers))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # Built with max_retries=0, AIORateLimiter logs each RetryAfter it passes on as an error
    # with a traceback; bot.retry logs the same event as a warning, and retries it.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    logging.captureWarnings(True)  # e.g. Pillow's DecompressionBombWarning, through the scrubber
