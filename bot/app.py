"""The application factory: wires settings, pipeline and handlers into a PTB Application.

``main`` and the tests both build the bot here, so what the tests drive is what users run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BaseRateLimiter

from nothotdog.bot import replies, teach_replies
from nothotdog.bot.classifier import load_model, with_threshold
from nothotdog.bot.download import TelegramFiles
from nothotdog.bot.feedback import FeedbackStore, StoreError
from nothotdog.bot.handlers import BotHandlers
from nothotdog.bot.health import HealthServer
from nothotdog.bot.line import MAX_WAITING
from nothotdog.bot.logs import fields
from nothotdog.bot.metrics import BotMetrics
from nothotdog.bot.pipeline import Pipeline
from nothotdog.bot.retry import with_retries
from nothotdog.bot.settings import Settings
from nothotdog.contract.runtime import OnnxModel

log = logging.getLogger(__name__)

# All the bot reads; Telegram then sends nothing else. Callback queries: the "Why?" button.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# AIORateLimiter paces sends to Telegram's limits and retries nothing: bot.retry is the one
# retry layer (it also sees network errors, which the limiter cannot retry).
RATE_LIMIT_RETRIES = 0
PARTS_KEY = "nothotdog"


@dataclass(frozen=True)
class Parts:
    """What the bot adds to PTB's Application, kept in its ``bot_data`` (PTB's place for
    application-wide objects) so that start-up, shutdown and the tests find them."""

    pipeline: Pipeline
    store: FeedbackStore | None  # None with FEEDBACK off
    health: HealthServer | None  # None unless HEALTH_PORT is set


def build_application(
    settings: Settings,
    model: OnnxModel | None = None,
    rate_limiter: BaseRateLimiter | None = None,
) -> Application:
    """A ready-to-run Application; loads the model from settings unless one is given. The
    rate limiter is AIORateLimiter at Telegram's limits unless one is given (benchmarks)."""
    if model is None:
        model = load_model(
            settings.model_path,
            threshold=settings.threshold,
            onnx_threads=settings.onnx_threads,
            runtime=settings.runtime,
        )
    elif settings.threshold is not None:
        model = with_threshold(model, settings.threshold)
    if settings.threshold is not None and not model.spec.two_class:
        log.warning("THRESHOLD is ignored: it applies to two-class models only, and this one "
                    "has %d labels (the most probable wins)", len(model.spec.labels))
    app = (
        ApplicationBuilder()
        .token(settings.require_token())
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .rate_limiter(rate_limiter or AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
        # A photo waiting in the pipeline's line is a handler awaiting its turn; PTB's default
        # of 256 handlers at once would park every later update, /help included, behind them.
        .concurrent_updates(MAX_WAITING + settings.queue_size)
        .read_timeout(settings.request_timeout)
        .write_timeout(settings.request_timeout)
        .connect_timeout(min(5.0, settings.request_timeout))
        .pool_timeout(5)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )

    pipeline = Pipeline(model, settings, TelegramFiles(app.bot))
    model_info = {"name": model.spec.name, "version": model.spec.version}
    metrics = BotMetrics(labels=model.spec.labels, admission=pipeline.admission, model=model_info)
    health: HealthServer | None = None
    if settings.health_port is not None:
        health = HealthServer(metrics, lambda: app.running, model_info,
                              listen=settings.health_listen, port=settings.health_port)  # fmt: skip
    store = FeedbackStore(settings.database_url) if settings.feedback else None
    app.bot_data[PARTS_KEY] = Parts(pipeline, store, health)
    BotHandlers(pipeline, settings, metrics, store).register(app)
    return app


def parts_of(app: Application) -> Parts:
    return app.bot_data[PARTS_KEY]


def pipeline_of(app: Application) -> Pipeline:
    return parts_of(app).pipeline


def privacy_mode_note(username: str, can_read_all_group_messages: bool) -> str:
    """What getMe's can_read_all_group_messages means for groups, in plain words."""
    if can_read_all_group_messages:
        return (
            f"Group privacy mode is OFF for @{username}: in groups it sees every message and "
            "answers every photo."
        )
    return (
        f"Group privacy mode is ON for @{username} (Telegram's default): in groups it sees "
        "only commands and replies to itself, so it answers a photo there only when someone "
        "replies to it with /hotdog, or when the bot is a group admin. To answer every photo: "
        "in @BotFather send /mybots, pick the bot, Bot Settings > Group Privacy > Turn off, "
        "then remove the bot from the group and add it again."
    )


async def _post_init(app: Application) -> None:
    bot = app.bot  # initialize() has called getMe already
    parts = parts_of(app)
    if parts.health is not None:  # /healthz and /metrics from here on
        port = parts.health.start()
        log.info("health and metrics on %s", fields(listen=parts.health.listen, port=port))
    spec = parts.pipeline.spec
    log.info(
        "started %s",
        fields(
            bot=f"@{bot.username}",
            model=spec.name,
            version=spec.version,
            threshold=spec.threshold,
        ),
    )
    log.info(privacy_mode_note(bot.username, bot.can_read_all_group_messages))
    store = parts.store
    if store is not None:
        try:  # votes need it; verdicts don't, so a database that is down stops nothing
            await store.run(store.open)
            log.info("votes kept in %s", store.url.render_as_string(hide_password=True))
        except StoreError as exc:
            log.warning("cannot open DATABASE_URL (%s); votes are not saved until it answers",
                        type(exc).__name__)  # fmt: skip
    commands = [BotCommand(name, text)
                for name, text in (*replies.COMMANDS, *teach_replies.COMMANDS)]  # fmt: skip
    try:  # the command menu is a nicety: never a reason not to start
        await with_retries(lambda: bot.set_my_commands(commands), "setMyCommands")
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)


async def _post_shutdown(app: Application) -> None:
    parts = parts_of(app)
    if parts.health is not None:
        await parts.health.stop()
    await parts.pipeline.close()
    if parts.store is not None:
        parts.store.close()
