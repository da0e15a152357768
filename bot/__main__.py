"""``nothotdog-bot`` / ``python -m bot``: load settings and model, then poll or serve a webhook.

Every start-up failure (no token, no model, bad token, Telegram unreachable) ends with one
plain sentence on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import logging
import secrets
import sys
from typing import Any

from telegram.error import InvalidToken, TelegramError

from bot.app import ALLOWED_UPDATES, build_application
from bot.classifier import ModelLoadError, load_model
from bot.logs import redact, setup_logging
from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("bot")

EXIT_CONFIG = 2


def webhook_options(settings: Settings, secret_token: str) -> dict[str, Any]:
    """Arguments shared by ``Application.run_webhook`` and ``Updater.start_webhook``."""
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": settings.webhook_path,
        "webhook_url": settings.webhook_url,
        "secret_token": secret_token,
        "allowed_updates": ALLOWED_UPDATES,
    }


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
        token = settings.require_token()
    except SettingsError as exc:
        return _fail(str(exc))
    # Telegram signs each webhook request with this; without one we make a fresh random one.
    secret = settings.webhook_secret or secrets.token_urlsafe(32)
    setup_logging(settings.log_level, secrets=[token, secret], quiet=(InvalidToken,))
    try:
        model = load_model(
            settings.model_path, threshold=settings.threshold, onnx_threads=settings.onnx_threads
        )
    except ModelLoadError as exc:
        return _fail(f"cannot start: {exc}")
    log.info("loaded model %s from %s", model.spec.name, model.path)
    app = build_application(settings, model=model)
    try:
        # Both stop cleanly on SIGINT and SIGTERM (PTB's default stop_signals).
        if settings.use_webhook:
            log.info("mode=webhook url=%s", settings.webhook_url)
            app.run_webhook(**webhook_options(settings, secret))
        else:
            log.info("mode=polling")
            app.run_polling(allowed_updates=ALLOWED_UPDATES)
    except InvalidToken:
        return _fail(
            "Telegram rejected TELEGRAM_BOT_TOKEN. Copy it again from @BotFather (/mybots > "
            "your bot > API Token) into .env."
        )
    except TelegramError as exc:
        where = redact(settings.base_url, [token])
        return _fail(f"cannot reach the Telegram Bot API at {where}: {redact(str(exc), [token])}")
    except OSError as exc:  # a port already taken (webhook or HEALTH_PORT), an address not ours
        return _fail(f"cannot start: {exc}")
    log.info("stopped")
    return 0


def _fail(message: str) -> int:
    print(f"nothotdog-bot: {message}", file=sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
