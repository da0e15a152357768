"""``/why`` and the "Why?" button: the photo sent back with the model's heatmap drawn over it.

Telegram in, a picture out. Downloading happens under the classifier's in-flight limit
(``Classifier.slot``) and the decode, the onnxruntime run and the drawing in its worker threads
(``bot.explain``), exactly like a verdict; text answers go through ``BotHandlers.reply``.
"""

from __future__ import annotations

import logging
import time

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, TelegramError, TimedOut
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot import replies
from bot.classifier import Busy
from bot.explain import explain_jpeg
from bot.handlers import MAX_DOWNLOAD_BYTES, BotHandlers, Picture, picture_in
from bot.logs import fields
from bot.retry import may_have_taken_effect, with_retries
from bot.settings import Settings
from contract import ImageDecodeError
from contract.runtime import OnnxModel

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
        reply = self.handlers.reply
        info = {"update_id": update.update_id, "chat_type": photo.chat.type, "source": source}
        if not self.classifier.model.has_heatmap:
            await reply(answer_to, replies.cant_explain())
            return
        if picture.file_size and picture.file_size > MAX_DOWNLOAD_BYTES:
            await reply(answer_to, replies.too_large(picture.file_size))
            return
        try:
            with self.classifier.slot():
                file = await with_retries(picture.get_file, "getFile")
                if file.file_size and file.file_size > MAX_DOWNLOAD_BYTES:
                    raise BadRequest("File is too big")
                data = await with_retries(file.download_as_bytearray, "download")
                explanation, jpeg = await self.classifier.run_in_worker(
                    explain_jpeg, self.classifier.model, bytes(data)
                )
        except Busy:
            log.warning("busy %s", fields(**info, queue_size=self.classifier.queue_size))
            await reply(answer_to, replies.busy())
            return
        except ImageDecodeError as exc:
            log.info("unreadable %s", fields(**info, reason=type(exc).__name__))
            await reply(answer_to, replies.unreadable(str(exc)))
            return
        except BadRequest as exc:
            if "too big" not in str(exc).lower():
                raise
            await reply(answer_to, replies.too_large())
            return
        caption = replies.why_caption(
            explanation.verdict, explanation.p_positive, self.classifier.spec
        )
        await self.send_picture(answer_to, jpeg, caption)
        log.info(
            "explained %s",
            fields(
                **info,
                label=explanation.verdict.label,
                probability=round(explanation.verdict.probability, 4),
                latency_ms=(time.perf_counter() - started) * 1000,
                bytes=len(jpeg),
            ),
        )

    async def send_picture(self, message: Message, jpeg: bytes, caption: str) -> None:
        """sendPhoto as a reply, retried like ``BotHandlers.reply`` and never sent twice."""
        quote = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
        try:
            await with_retries(
                lambda: message.reply_photo(jpeg, caption=caption, reply_parameters=quote),
                "sendPhoto",
                idempotent=False,
            )
        except TimedOut as exc:
            if not may_have_taken_effect(exc):
                raise
            log.warning(
                "sendPhoto timed out after it was sent; not sending it again %s",
                fields(chat_id=message.chat.id, message_id=message.message_id),
            )
