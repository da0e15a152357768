"""``/why`` and the "Why?" button: the photo sent back with the model's heatmap drawn over it.

Telegram in, a picture out, admitted exactly like a verdict: a place under QUEUE_SIZE
(``Classifier.slot``), the file within the byte budget from before its download until the
drawing ends, the decodes and the drawing in the decode threads, priced before a pixel is
decoded (``Classifier.decode_with``), the heatmap in the inference threads (``bot.explain``).
Size limits, refusals and text answers are ``BotHandlers``'.
"""

from __future__ import annotations

import functools
import logging
import time

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from nothotdog.bot import replies
from nothotdog.bot.albums import Answer
from nothotdog.bot.budget import Lease
from nothotdog.bot.classifier import Verdict, verdict_from
from nothotdog.bot.explain import PICTURE_SIDE, draw_bytes, draw_jpeg
from nothotdog.bot.handlers import BotHandlers, Picture, picture_in
from nothotdog.bot.logs import fields
from nothotdog.bot.retry import reply_once
from nothotdog.bot.settings import Settings
from nothotdog.contract.runtime import OnnxModel

log = logging.getLogger(__name__)

BUTTON_DATA = "why"
# The PhotoSize to draw on: the smallest whose shorter side has this many pixels (Telegram's
# 800 px one, usually), so the picture is worth looking at and still a small download.
PICTURE_MIN_SIDE = 480


def why_button(settings: Settings, model: OnnxModel) -> InlineKeyboardMarkup | None:
    """The markup for each verdict: a "Why?" button when it is asked for and can work."""
    if not (settings.show_why_button and model.has_heatmap):
        return None
    return InlineKeyboardMarkup.from_button(
        InlineKeyboardButton(replies.why_button(), callback_data=BUTTON_DATA)
    )


class WhyHandlers:
    """``/why`` and the button, sharing the verdict handlers' classifier and replies."""

    def __init__(self, handlers: BotHandlers) -> None:
        self.handlers = handlers
        self.classifier = handlers.classifier

    def register(self, app: Application) -> None:
        """Register before ``BotHandlers.register``: its catch-all for private messages would
        otherwise take ``/why`` in private chats."""
        app.add_handlers(
            [
                CommandHandler("why", self.why, filters=filters.UpdateType.MESSAGE),
                CallbackQueryHandler(self.on_button, pattern=f"^{BUTTON_DATA}$"),
            ]
        )

    async def why(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None  # a command is a message
        target = message.reply_to_message
        picture = picture_in(target, PICTURE_MIN_SIDE) if target is not None else None
        if target is None or picture is None:
            has_file = target is not None and target.document is not None
            await self.handlers.reply(
                message, replies.not_an_image() if has_file else replies.why_usage()
            )
            return
        await self.explain(update, target, picture, answer_to=target, source="command")

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The button under a verdict: the verdict replies to the photo, so the photo is the
        message the verdict replies to."""
        query = update.callback_query
        assert query is not None
        try:  # stops the button's spinner; the picture itself comes as a message
            await query.answer()
        except TelegramError as exc:
            log.warning("could not answer the button %s", fields(error=exc))
        verdict = query.message
        if not isinstance(verdict, Message):
            return  # too old for Telegram to show us: nothing to reply to
        photo = verdict.reply_to_message
        picture = picture_in(photo, PICTURE_MIN_SIDE) if photo is not None else None
        if photo is None or picture is None:
            await self.handlers.reply(verdict, replies.photo_gone())
            return
        await self.explain(update, photo, picture, answer_to=verdict, source="button")

    async def explain(
        self, update: Update, photo: Message, picture: Picture, *, answer_to: Message, source: str
    ) -> None:
        """Download ``picture``, draw its heatmap and send it as a reply to ``answer_to``."""
        started = time.perf_counter()
        handlers = self.handlers
        info = {"update_id": update.update_id, "chat_type": photo.chat.type, "source": source}
        if not self.classifier.model.has_heatmap:
            await handlers.reply(answer_to, replies.cant_explain())
            return
        admitted = await handlers.admitted(picture, info, self.draw)
        if isinstance(admitted, Answer):
            await handlers.reply(answer_to, admitted.text)
            return
        (verdict, jpeg, nbytes), preview = admitted
        caption = replies.why_caption(verdict, self.classifier.spec)
        if preview:
            caption = replies.from_preview(caption, handlers.settings.max_file_mb)
        await self.send_picture(answer_to, jpeg, caption)
        handlers.metrics.explained.inc()
        log.info(
            "explained %s",
            fields(
                **info,
                label=verdict.label,
                probability=round(verdict.probability, 4),
                latency_ms=(time.perf_counter() - started) * 1000,
                bytes=nbytes,
                jpeg_bytes=len(jpeg),
            ),
        )

    async def draw(
        self, picture: Picture, lease: Lease, declared: int
    ) -> tuple[Verdict, bytes, int]:
        """The verdict (with its P(positive)), the picture as a JPEG, and the file's size.

        The file is held within ``lease`` until the drawing ends: it is decoded twice, for the
        model and for the picture (each decode priced and waiting for room like a verdict's).
        """
        classifier = self.classifier
        data: bytearray | None = None
        try:
            data = await self.handlers.fetch(picture, lease, declared)
            image = await classifier.decode_async(data, held=lease.nbytes)
            probs, heatmaps = await classifier.run_in_worker(classifier.model.explain, image[None])
            verdict = verdict_from(classifier.spec, probs[0])
            jpeg = await classifier.decode_with(
                data,
                PICTURE_SIDE,
                functools.partial(draw_jpeg, heatmap=heatmaps[0], max_side=PICTURE_SIDE),
                held=lease.nbytes,
                price=functools.partial(draw_bytes, max_side=PICTURE_SIDE),
            )
            return verdict, jpeg, len(data)
        finally:
            data = None  # freed now, not when a traceback that saw it is dropped

    async def send_picture(self, message: Message, jpeg: bytes, caption: str) -> None:
        """sendPhoto as a reply, retried like ``BotHandlers.reply`` and never sent twice."""
        await reply_once(
            message,
            lambda quote: message.reply_photo(jpeg, caption=caption, reply_parameters=quote),
            "sendPhoto",
        )
