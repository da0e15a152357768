"""``nothotdog-bot`` / ``python -m nothotdog.bot``: load settings and model, then poll or serve
a webhook.

Every start-up failure (no token, no model, bad model, bad token, wrong base URL, Telegram
unreachable, port taken) ends with one plain sentence on stderr naming the cause and the fix,
and exit status 2; tracebacks only at LOG_LEVEL=DEBUG.
"""

from __future__ import annotations

import argparse
import errno
import logging
import re
import secrets
import sys
from typing import Any

from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import BaseRateLimiter

from nothotdog.bot import serving
from nothotdog.bot.app import ALLOWED_UPDATES, build_application
from nothotdog.bot.classifier import load_model
from nothotdog.bot.logs import redact, setup_logging
from nothotdog.bot.settings import (
    TELEGRAM_BASE_URL,
    Settings,
    SettingsError,
    load_settings,
    settings_help,
)
from nothotdog.contract.runtime import ModelLoadError, ModelMissing
from nothotdog.contract.version import add_version

log = logging.getLogger("nothotdog.bot")

EXIT_CONFIG = 2
# After a model file that is there but unusable (a missing one's message has its own fixes).
MODEL_FIX = (
    "Point MODEL_PATH at a file made by nothotdog-export, or leave it empty for the model "
    "that ships with nothotdog."
)
# What @BotFather hands out: the bot's id, a colon, 35 characters.
_TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]{30,}$")


def webhook_options(settings: Settings, secret_token: str) -> dict[str, Any]:
    """What ``bot.webhook.WebhookServer`` takes: where to listen, and what to tell Telegram."""
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": settings.webhook_path,
        "webhook_url": settings.webhook_url,
        "secret_token": secret_token,
        "allowed_updates": ALLOWED_UPDATES,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Only --help and --version: everything else is a setting, so containers and systemd
    units configure the bot one way."""
    parser = argparse.ArgumentParser(
        prog="nothotdog-bot",
        description="Run the nothotdog Telegram bot: it answers each photo with 'Hotdog!' or "
        "'Not hotdog'. It takes no arguments; settings come from environment variables or "
        "./.env (the environment wins), and only TELEGRAM_BOT_TOKEN is required.",
        epilog=f"settings:\n{settings_help()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, rate_limiter: BaseRateLimiter | None = None) -> int:
    """Run the bot; ``rate_limiter`` replaces the one at Telegram's limits (benchmarks)."""
    parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
        token = settings.require_token()
    except SettingsError as exc:
        return _fail(str(exc))
    # Telegram signs each webhook request with this; without one we make a fresh random one.
    secret = settings.webhook_secret or secrets.token_urlsafe(32)
    setup_logging(settings.log_level, secrets=[token, secret], quiet=(Exception,))
    try:
        model = load_model(
            settings.model_path,
            threshold=settings.threshold,
            onnx_threads=settings.onnx_threads,
            runtime=settings.runtime,
        )
    except ModelMissing as exc:  # missing_model() already names the fixes
        return _fail(f"cannot start: {exc}")
    except ModelLoadError as exc:
        return _fail(f"cannot start: {exc} {MODEL_FIX}")
    log.info("loaded model %s from %s on %s", model.spec.name, model.path, model.runtime)
    app = build_application(settings, model=model, rate_limiter=rate_limiter)
    webhook = webhook_options(settings, secret) if settings.use_webhook else None
    if webhook is not None:
        log.info("mode=webhook url=%s", settings.webhook_url)
    else:
        log.info("mode=polling")
    try:  # SIGINT and SIGTERM stop it once the photos it has are answered
        serving.run(app, webhook=webhook, stop_timeout=settings.stop_timeout_s)
    except (TelegramError, OSError) as exc:
        log.debug("start-up failed", exc_info=exc)
        return _fail(redact(startup_failure(exc, settings), [token, secret]))
    log.info("stopped")
    return 0


def startup_failure(exc: BaseException, settings: Settings) -> str:
    """One sentence for an exception that stopped start-up: its cause and its fix."""
    where = settings.base_url
    custom = where != TELEGRAM_BASE_URL
    if isinstance(exc, InvalidToken):
        if not _TOKEN_SHAPE.match(settings.token):
            return (
                "TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then 35 "
                "letters and digits). Copy it again from @BotFather (/mybots > your bot > "
                "API Token) into .env."
            )
        # 404: what Telegram answers an unknown URL (PTB's initialize() wraps the original).
        if "not found" in f"{exc} {exc.__cause__}".lower():
            return (
                f"the Bot API at {where} answered 404 Not Found to a well-formed token, so "
                "TELEGRAM_BASE_URL is wrong: it must end in /bot (the token is appended), e.g. "
                f"{TELEGRAM_BASE_URL}; leave it empty for Telegram's."
            )
        return (
            "Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized): it is wrong or was "
            "revoked. Copy it again from @BotFather (/mybots > your bot > API Token) into .env."
        )
    if isinstance(exc, (NetworkError, TimedOut)):
        fix = (
            "check TELEGRAM_BASE_URL and that its server is running"
            if custom
            else "check this machine's internet connection, proxy (HTTPS_PROXY) and firewall"
        )
        return f"cannot reach the Telegram Bot API at {where} ({exc}): {fix}."
    if isinstance(exc, TelegramError):
        return (
            f"the Bot API at {where} gave an answer the bot cannot use ({type(exc).__name__}: "
            f"{exc}); check TELEGRAM_BASE_URL (empty means Telegram's, {TELEGRAM_BASE_URL})."
        )
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        ports = [f"HEALTH_PORT ({settings.health_port})"] if settings.health_port else []
        if settings.use_webhook:
            ports.insert(0, f"WEBHOOK_PORT ({settings.webhook_port})")
        return (
            f"{' or '.join(ports) or 'a port the bot needs'} is already in use: another "
            "program, or another copy of the bot, listens there. Stop it or choose a free port."
        )
    if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on that address ({exc.strerror}): WEBHOOK_LISTEN "
            f"({settings.webhook_listen}) and HEALTH_LISTEN ({settings.health_listen}) must "
            "be addresses of this machine, e.g. 127.0.0.1 or 0.0.0.0."
        )
    return f"cannot start: {exc}"


def _fail(message: str) -> int:
    print(f"nothotdog-bot: {message}", file=sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
