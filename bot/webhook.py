"""The webhook server: a POST is answered 200 only once its update is processed.

PTB's own webhook server answers 200 as soon as an update is queued, so the updates of a
replica that stops or crashes were lost. Telegram delivers an update again when its request
fails, and nginx answers 502 for a replica that died mid-request, so answering once the
answer is sent is all a crash needs. A stop closes the listening socket first (nginx then
passes new updates to another replica), answers 503 to a request that comes on a connection
still open (Telegram delivers it again later), and finishes the ones it has.

The checks are PTB's: only POST to the path of WEBHOOK_URL, with the exact secret header
(403 otherwise, compared in constant time). Bodies are capped at 1 MiB: an update is a few
KB of JSON (PTB allowed 100 MB).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re

import tornado.httpserver
import tornado.web
from telegram import Bot, Update

from nothotdog.bot.intake import Intake
from nothotdog.bot.logs import fields
from nothotdog.bot.retry import with_retries

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1024 * 1024
# Telegram's most: each connection now holds one update until it is answered, so this is how
# many updates Telegram lets the bot (all replicas together) work on at once.
MAX_CONNECTIONS = 100


class WebhookServer:
    def __init__(
        self,
        bot: Bot,
        intake: Intake,
        *,
        listen: str,
        port: int,
        url_path: str,
        webhook_url: str,
        secret_token: str,
        allowed_updates: list[str],
    ) -> None:
        self.bot, self.intake = bot, intake
        self.listen, self.port = listen, port
        self.url_path, self.webhook_url = url_path, webhook_url
        self.secret = secret_token.encode()
        self.allowed_updates = allowed_updates
        app = tornado.web.Application(
            [(rf"/{re.escape(url_path)}/?", _UpdateHandler, {"server": self})],
            log_function=_log_request,
        )
        self._http = tornado.httpserver.HTTPServer(app, max_body_size=MAX_BODY_BYTES)
        self.running = False

    async def start(self) -> None:
        self._http.listen(self.port, address=self.listen)  # OSError if the port is taken
        self.running = True
        await with_retries(
            lambda: self.bot.set_webhook(
                url=self.webhook_url,
                secret_token=self.secret.decode(),
                allowed_updates=self.allowed_updates,
                max_connections=MAX_CONNECTIONS,
            ),
            "setWebhook",
        )

    async def stop_taking(self) -> None:
        self._http.stop()
        self.running = False

    async def close(self) -> None:
        await self._http.close_all_connections()


class _UpdateHandler(tornado.web.RequestHandler):
    def initialize(self, server: WebhookServer) -> None:
        self.server = server

    async def post(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self.server.secret):
            raise tornado.web.HTTPError(403)
        intake = self.server.intake
        if not intake.taking:  # stopping: Telegram delivers it again, to whoever listens
            self.set_header("Connection", "close")
            raise tornado.web.HTTPError(503)
        try:
            update = Update.de_json(json.loads(self.request.body), self.server.bot)
        except Exception as exc:  # not an update: any error from parsing it means the same
            log.warning("webhook request is not an update %s", fields(error=type(exc).__name__))
            raise tornado.web.HTTPError(400) from None
        try:
            await intake.process(update)
        except asyncio.CancelledError:  # the stop ran out of time: Telegram delivers it again
            raise tornado.web.HTTPError(503) from None
        self.set_status(200)

    def check_xsrf_cookie(self) -> None:
        """Telegram sends no cookies; the secret header is the check."""


def _log_request(handler: tornado.web.RequestHandler) -> None:
    log.debug("webhook %s", fields(status=handler.get_status(), path=handler.request.path))
