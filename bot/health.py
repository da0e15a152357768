"""``/healthz`` and ``/metrics`` on their own port, for orchestrators and Prometheus.

Off unless HEALTH_PORT is set, and on 127.0.0.1 unless HEALTH_LISTEN says otherwise: the
numbers are nobody's business outside the host or the container network. It is a separate
port from the webhook's so the proxy that faces Telegram never exposes it. It runs on the
bot's own event loop (tornado, which PTB's webhook server already brings), so a loop that
stops answering also stops answering health checks.

``python -m nothotdog.bot.health`` asks this process's /healthz and exits 0 or 1: the container's
HEALTHCHECK, with nothing to install (slim images have no curl).
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.request
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from nothotdog.bot.metrics import BotMetrics
from nothotdog.bot.settings import SettingsError, load_settings

log = logging.getLogger(__name__)


class HealthServer:
    """An HTTP server with two pages; ``ready`` says whether the bot takes updates now."""

    def __init__(
        self,
        metrics: BotMetrics,
        ready: Callable[[], bool],
        model: dict[str, str],
        *,
        listen: str,
        port: int,
    ) -> None:
        self.listen = listen
        self.port = port
        self._app = Application(
            [
                (r"/healthz", _Health, {"ready": ready, "model": model}),
                (r"/metrics", _Metrics, {"metrics": metrics}),
            ],
            log_function=_log_request,
        )
        self._server: HTTPServer | None = None

    def start(self) -> int:
        """Bind and serve on the running event loop; returns the port (0 picks a free one)."""
        sockets = bind_sockets(self.port, address=self.listen)
        self._server = HTTPServer(self._app, xheaders=False)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None


class _Health(RequestHandler):
    def initialize(self, ready: Callable[[], bool], model: dict[str, str]) -> None:
        self.ready = ready
        self.model = model

    def get(self) -> None:
        # The model loads before the server starts: if it answers, the model is there.
        ok = self.ready()
        self.set_status(200 if ok else 503)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "ok" if ok else "not running", "model": self.model}))


class _Metrics(RequestHandler):
    def initialize(self, metrics: BotMetrics) -> None:
        self.metrics = metrics

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.metrics.registry))


def _log_request(handler: RequestHandler) -> None:
    """Scrapes and health checks come every few seconds: at DEBUG, not in the INFO log."""
    status = handler.get_status()
    level = logging.DEBUG if status < 500 else logging.WARNING
    request = handler.request
    log.log(level, "%d %s %s", status, request.method, request.uri)


def probe(listen: str, port: int, timeout: float = 5.0) -> bool:
    """True when the bot on this host answers /healthz with 200."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(listen, listen)
    if ":" in host:
        host = f"[{host}]"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:  # refused, timed out, or an HTTP error status
        return False


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if settings.health_port is None:
        print("unhealthy: HEALTH_PORT is not set, so there is nothing to ask", file=sys.stderr)
        return 1
    if probe(settings.health_listen, settings.health_port):
        return 0
    print(f"unhealthy: no 200 from /healthz on port {settings.health_port}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
