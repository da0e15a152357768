"""Telegram in, text out: which messages the bot answers, and with what.

Everything about images beyond picking which file to download lives in the classifier; every
sentence lives in ``replies``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from telegram import Document, Message, PhotoSize, ReplyParameters, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError, TimedOut
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import replies
from bot.classifier import Busy, Classifier
from bot.logs import fields
from bot.metrics import BotMetrics
from bot.retry import may_have_taken_effect, with_retries
from bot.settings import Settings
from contract import ImageDecodeError

log = logging.getLogger(__name__)

# Telegram's Bot API serves files up to 20 MB; getFile fails above that.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "jpe", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif"}
)

Picture = PhotoSize | Document


# Vector drawings are "image/*" too, but Pillow cannot read them: told so without a download.
VECTOR_MIME_TYPES = frozenset({"image/svg+xml"})


def is_image_document(document: Document) -> bool:
    """By MIME type, or by extension when a client sent a generic type for an image."""
    mime = (document.mime_type or "").lower()
    if mime in VECTOR_MIME_TYPES:
        return False
    if mime.startswith("image/"):
        return True
    name = (document.file_name or "").lower()
    return "." in name and name.rsplit(".", 1)[1] in IMAGE_EXTENSIONS


class _ImageDocument(filters.MessageFilter):
    def filter(self, message: Message) -> bool:
        return message.document is not None and is_image_document(message.document)


IMAGE_DOCUMENT = _ImageDocument(name="IMAGE_DOCUMENT")


def pick_photo_size(sizes: Sequence[PhotoSize], min_side: int) -> PhotoSize:
    """The smallest size whose shorter side still covers the model input, else the largest.

    Telegram sends each photo in several sizes; downloading and decoding a 1280 px JPEG to
    shrink it to 224 px wastes time when a 320 px one is there.
    """
    adequate = [s for s in sizes if min(s.width, s.height) >= min_side]
    if adequate:
        return min(adequate, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


def picture_in(message: Message, min_side: int) -> Picture | None:
    if message.photo:
        return pick_photo_size(message.photo, min_side)
    if message.document is not None and is_image_document(message.document):
        return message.document
    return None


class BotHandlers:
    """The callbacks, bound to one classifier and one set of settings."""

    def __init__(
        self, classifier: Classifier, settings: Settings, metrics: BotMetrics | None = None
    ) -> None:
        self.classifier = classifier
        self.settings = settings
        self.metrics = metrics or BotMetrics()

    def register(self, app: Application) -> None:
        if self.settings.allowed_chat_ids is not None:
            app.add_handler(TypeHandler(Update, self.gate), group=-1)
        new = filters.UpdateType.MESSAGE  # not edits: a changed caption is not a new photo
        private = filters.ChatType.PRIVATE
        app.add_handlers(
            [
                CommandHandler("start", self.start, filters=new),
                CommandHandler("help", self.help, filters=new),
                CommandHandler("about", self.about, filters=new),
                CommandHandler("hotdog", self.hotdog, filters=new),
                MessageHandler(new & (filters.PHOTO | IMAGE_DOCUMENT), self.on_picture),
                # In groups, other files are none of our business: silence.
                MessageHandler(new & private & filters.Document.ALL, self.on_other_document),
                MessageHandler(new & private, self.on_other_private),
            ]
        )
        app.add_error_handler(self.on_error)

    # --- access -----------------------------------------------------------------------

    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Runs before every handler when ALLOWED_CHAT_IDS is set."""
        chat, message = update.effective_chat, update.effective_message
        allowed = self.settings.allowed_chat_ids or frozenset()
        if chat is None or chat.id in allowed:
            return
        if message is not None and (
            chat.type == ChatType.PRIVATE
            or picture_in(message, 0) is not None
            or (message.text or "").startswith("/")
        ):
            log.info("refused %s", fields(chat_id=chat.id, chat_type=chat.type))
            await self.reply(message, replies.not_allowed())
        raise ApplicationHandlerStop

    # --- commands ---------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.start())

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.help_text())

    async def about(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.about(self.classifier.spec))

    async def hotdog(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/hotdog`` as a reply to a photo: works in groups even with privacy mode on."""
        message = _message(update)
        target = message.reply_to_message
        picture = picture_in(target, self.classifier.spec.input_size) if target else None
        if target is not None and picture is not None:
            await self.answer_picture(update, target, picture, source="command")
        elif target is not None and target.document is not None:
            await self.reply(message, replies.not_an_image())
        else:
            await self.reply(message, replies.hotdog_usage())

    # --- pictures and everything else -------------------------------------------------------

    async def on_picture(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _message(update)
        picture = picture_in(message, self.classifier.spec.input_size)
        if picture is not None:
            source = "photo" if message.photo else "document"
            await self.answer_picture(update, message, picture, source=source)

    async def on_other_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.not_an_image())

    async def on_other_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.hotdog_usage_private())

    async def answer_picture(
        self, update: Update, message: Message, picture: Picture, *, source: str
    ) -> None:
        """Download, classify and answer one picture; every expected failure gets a reply."""
        started = time.perf_counter()
        info = {"update_id": update.update_id, "chat_type": message.chat.type, "source": source}
        if picture.file_size and picture.file_size > MAX_DOWNLOAD_BYTES:
            log.info("refused %s", fields(**info, reason="too_large", bytes=picture.file_size))
            self.metrics.too_large.inc()
            await self.reply(message, replies.too_large(picture.file_size))
            return
        try:
            with self.classifier.slot():
                file = await with_retries(picture.get_file, "getFile")
                if file.file_size and file.file_size > MAX_DOWNLOAD_BYTES:
                    raise BadRequest("File is too big")
                data = await with_retries(file.download_as_bytearray, "download")
                downloaded = time.perf_counter()
                verdict = await self.classifier.classify(bytes(data))
        except Busy:
            log.warning("busy %s", fields(**info, queue_size=self.classifier.queue_size))
            self.metrics.busy.inc()
            await self.reply(message, replies.busy())
            return
        except ImageDecodeError as exc:
            log.info("unreadable %s", fields(**info, reason=type(exc).__name__))
            self.metrics.unreadable.inc()
            await self.reply(message, replies.unreadable(str(exc)))
            return
        except BadRequest as exc:
            if "too big" not in str(exc).lower():
                raise
            log.info("refused %s", fields(**info, reason="too_large"))
            self.metrics.too_large.inc()
            await self.reply(message, replies.too_large())
            return
        classified = time.perf_counter()
        text = replies.verdict(verdict, self.classifier.spec, self.settings.show_confidence)
        await self.reply(message, text)
        done = time.perf_counter()
        self.metrics.observe_answer(
            verdict.label, downloaded - started, classified - downloaded, done - started
        )
        log.info(
            "classified %s",
            fields(
                **info,
                label=verdict.label,
                probability=round(verdict.probability, 4),
                latency_ms=(time.perf_counter() - started) * 1000,
                download_ms=(downloaded - started) * 1000,
                classify_ms=(classified - downloaded) * 1000,
                bytes=len(data),
            ),
        )

    async def reply(self, message: Message, text: str) -> Message | None:
        """Answer ``message`` in its chat (and topic), retrying what Telegram lets us retry.

        None when Telegram took the message but its answer timed out: it has most likely
        been delivered, so neither the text nor an apology is sent a second time.
        """
        quote = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
        try:
            return await with_retries(
                lambda: message.reply_text(text, reply_parameters=quote),
                "sendMessage",
                idempotent=False,
            )
        except TimedOut as exc:
            if not may_have_taken_effect(exc):
                raise
            log.warning(
                "sendMessage timed out after it was sent; not sending it again %s",
                fields(chat_id=message.chat.id, message_id=message.message_id),
            )
            return None

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log every failure with its update id (the log formatter scrubs the token)."""
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        self.metrics.errors.inc()
        log.error(
            "update failed %s",
            fields(update_id=update_id, error=type(error).__name__),
            exc_info=error,
        )
        message = update.effective_message if isinstance(update, Update) else None
        if message is not None:
            try:
                await self.reply(message, replies.failed())
            except TelegramError as exc:
                log.error("could not tell the user %s", fields(update_id=update_id, error=exc))


def _message(update: Update) -> Message:
    assert update.effective_message is not None  # guaranteed by the handlers' filters
    return update.effective_message
