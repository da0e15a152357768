"""Telegram in, text out: which messages the bot answers, and with what.

Everything about images beyond picking which file to download lives in the classifier, the
bytes in flight are counted by its budget; every sentence lives in ``replies``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import PurePath
from typing import TypeVar

import numpy as np
from telegram import Document, InlineKeyboardMarkup, Message, PhotoSize, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from nothotdog.bot import replies
from nothotdog.bot.access import Cooldown
from nothotdog.bot.albums import Albums, Answer
from nothotdog.bot.budget import Lease
from nothotdog.bot.classifier import Busy, Classifier
from nothotdog.bot.download import FileDownloader, FileTooLarge, download_bytes
from nothotdog.bot.logs import fields
from nothotdog.bot.metrics import BotMetrics
from nothotdog.bot.retry import reply_once, with_retries
from nothotdog.bot.settings import Settings
from nothotdog.contract import ImageDecodeError
from nothotdog.contract.layout import IMAGE_SUFFIXES, MB

log = logging.getLogger(__name__)
T = TypeVar("T")

LEAVE_AGAIN_S = 60.0  # an outsider group that re-adds the bot is left again, at most this often

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
    return PurePath(name).suffix in IMAGE_SUFFIXES


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
        self,
        classifier: Classifier,
        settings: Settings,
        downloader: FileDownloader,
        metrics: BotMetrics | None = None,
        verdict_markup: InlineKeyboardMarkup | None = None,  # e.g. bot.why's "Why?" button
    ) -> None:
        self.classifier = classifier
        self.settings = settings
        self.downloader = downloader
        self.metrics = metrics or BotMetrics()
        self.verdict_markup = verdict_markup
        self.max_file_bytes = settings.max_file_mb * MB
        self.refusals = Cooldown(settings.outsider_reply_minutes * 60)
        self.leaves = Cooldown(LEAVE_AGAIN_S)
        self.albums = Albums(settings.album_wait_s, self.answer_album)

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
        """Runs before every handler when ALLOWED_CHAT_IDS is set.

        A private outsider is told "no" at most once per OUTSIDER_REPLY_MINUTES; an outsider
        group is told once, then left (it is no place for a private bot). Nothing of theirs
        is downloaded.
        """
        chat, message = update.effective_chat, update.effective_message
        allowed = self.settings.allowed_chat_ids or frozenset()
        if chat is None or chat.id in allowed:
            return
        if message is not None:
            await self.refuse(message, context)
        raise ApplicationHandlerStop

    async def refuse(self, message: Message, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Say no (if not said lately) and leave a group; a failure is logged, not apologised
        for: an outsider gets no second message."""
        chat = message.chat
        try:
            if chat.type == ChatType.PRIVATE:
                if self.refusals.allow(chat.id):
                    log.info("refused %s", fields(chat_id=chat.id, chat_type=chat.type))
                    await self.reply(message, replies.not_allowed())
                return
            if self.refusals.allow(chat.id):
                await self.reply(message, replies.not_allowed_group())
            if self.leaves.allow(chat.id):
                log.info("leaving %s", fields(chat_id=chat.id, chat_type=chat.type))
                await with_retries(lambda: context.bot.leave_chat(chat.id), "leaveChat")
        except TelegramError as exc:  # e.g. blocked or removed meanwhile: nothing left to do
            log.warning("could not refuse or leave %s", fields(chat_id=chat.id, error=exc))

    # --- commands ---------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.start())

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.help_text(self.settings.max_file_mb))

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
        """A picture on its own gets its own answer; an album's pictures share one."""
        message = _message(update)
        picture = picture_in(message, self.classifier.spec.input_size)
        if picture is None:
            return
        source = "photo" if message.photo else "document"
        if self.albums.accepts(message):
            await self.albums.add(message, self.judge(update, message, picture, source=source))
        else:
            await self.answer_picture(update, message, picture, source=source)

    async def on_other_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.not_an_image())

    async def on_other_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.hotdog_usage_private())

    async def answer_picture(
        self, update: Update, message: Message, picture: Picture, *, source: str
    ) -> None:
        """Download, classify and answer one picture; every expected failure gets a reply."""
        answer = await self.judge(update, message, picture, source=source)
        markup = self.verdict_markup if answer.verdict is not None else None
        await self.reply(message, answer.text, markup=markup)
        self.observe(answer)

    async def answer_album(self, first: Message, answers: Sequence[Answer]) -> None:
        """One reply to the album's first picture, each picture's verdict in order."""
        pairs = [(a.verdict, a.text) for a in answers]
        await self.reply(first, replies.album(pairs, self.settings.show_confidence))
        for answer in answers:
            self.observe(answer)
        log.info(
            "album answered %s",
            fields(chat_type=first.chat.type, media_group_id=first.media_group_id,
                   pictures=len(answers)),
        )  # fmt: skip

    def observe(self, answer: Answer) -> None:
        if answer.verdict is not None and answer.times is not None:
            started, downloaded, classified = answer.times
            done = time.perf_counter()
            self.metrics.observe_answer(
                answer.verdict.label, downloaded - started, classified - downloaded, done - started
            )

    async def judge(
        self, update: Update, message: Message, picture: Picture, *, source: str
    ) -> Answer:
        """Download and classify one picture: its verdict, or the reason there is none.

        Admitted on its declared size into the classifier's byte budget, or "busy" at once;
        an image file over MAX_FILE_MB is judged from Telegram's preview, or refused.
        """
        started = time.perf_counter()
        info = {"update_id": update.update_id, "chat_type": message.chat.type, "source": source}

        async def classify(picture: Picture, lease: Lease, declared: int):
            image, nbytes, downloaded = await self.fetch_and_decode(picture, lease, declared)
            lease.release()  # decoded: the file's bytes go back before inference
            decoded = time.perf_counter()
            return await self.classifier.infer(image), nbytes, downloaded, decoded

        admitted = await self.admitted(picture, info, classify)
        if isinstance(admitted, Answer):
            return admitted
        (verdict, nbytes, downloaded, decoded), preview = admitted
        classified = time.perf_counter()
        text = replies.verdict(verdict, self.classifier.spec, self.settings.show_confidence)
        if preview:
            text = replies.from_preview(text, self.settings.max_file_mb)
        log.info(
            "classified %s",
            fields(
                **info,
                label=verdict.label,
                probability=round(verdict.probability, 4),
                latency_ms=(classified - started) * 1000,
                download_ms=(downloaded - started) * 1000,
                decode_ms=(decoded - downloaded) * 1000,
                classify_ms=(classified - decoded) * 1000,
                bytes=nbytes,
            ),
        )
        return Answer(text, verdict, (started, downloaded, classified))

    async def admitted(
        self,
        picture: Picture,
        info: dict[str, object],
        work: Callable[[Picture, Lease, int], Awaitable[T]],
    ) -> tuple[T, bool] | Answer:
        """``work(picture, lease, declared size)`` holding one of QUEUE_SIZE places and the
        file's bytes in the budget, with whether the picture is Telegram's preview; or the
        answer to a refusal or an expected failure. Verdicts and /why share it, so both keep
        the same bounds and give the same answers."""
        sized = self.size_check(picture, info)
        if isinstance(sized, Answer):
            return sized
        picture, size, preview = sized
        try:
            with self.classifier.slot():
                declared = self.max_file_bytes if size is None else size
                with self.classifier.budget.admit(download_bytes(declared)) as lease:
                    return await work(picture, lease, declared), preview
        except (Busy, ImageDecodeError, FileTooLarge, BadRequest) as exc:
            failure = self.failure(info, exc)
            if failure is None:
                raise
            return failure

    def size_check(
        self, picture: Picture, info: dict[str, object]
    ) -> tuple[Picture, int | None, bool] | Answer:
        """(what to download, its declared size, whether it is Telegram's preview), or the
        refusal for a file over MAX_FILE_MB without a preview."""
        size = picture.file_size
        if not size or size <= self.max_file_bytes:
            return picture, size, False
        thumbnail = picture.thumbnail if isinstance(picture, Document) else None
        if thumbnail is None:
            return self.too_large(info, size)
        info["source"] = f"{info['source']}_preview"
        return thumbnail, thumbnail.file_size, True

    def failure(self, info: dict[str, object], exc: Exception) -> Answer | None:
        """The answer to an expected failure (busy, unreadable, too large); None for others."""
        if isinstance(exc, Busy):
            log.warning("busy %s", fields(**info, reason=str(exc)))
            self.metrics.busy.inc()
            return Answer(replies.busy())
        if isinstance(exc, ImageDecodeError):
            log.info("unreadable %s", fields(**info, reason=type(exc).__name__))
            self.metrics.unreadable.inc()
            return Answer(replies.unreadable(str(exc)))
        if isinstance(exc, FileTooLarge):
            return self.too_large(info, exc.size)
        if isinstance(exc, BadRequest) and "too big" in str(exc).lower():
            return self.too_large(info, None)
        return None

    def too_large(self, info: dict[str, object], size: int | None) -> Answer:
        """Refused: over MAX_FILE_MB (or Telegram's own download limit) with no preview."""
        extra = {} if size is None else {"bytes": size}
        log.info("refused %s", fields(**info, reason="too_large", **extra))
        self.metrics.too_large.inc()
        return Answer(replies.too_large(size, self.settings.max_file_mb))

    async def fetch(self, picture: Picture, lease: Lease, declared: int) -> bytearray:
        """The file's bytes, held within ``lease`` (admitted for ``declared`` bytes, grown to
        getFile's size if that is bigger, or Busy)."""
        file = await with_retries(picture.get_file, "getFile")
        limit = declared if file.file_size is None else file.file_size
        if limit > self.max_file_bytes:
            raise FileTooLarge(limit)
        if not lease.grow(download_bytes(limit)):
            raise Busy(f"the file has {limit} bytes, more than declared, and no room")
        return await with_retries(lambda: self.downloader.fetch(file, limit), "download")

    async def fetch_and_decode(
        self, picture: Picture, lease: Lease, declared: int
    ) -> tuple[np.ndarray, int, float]:
        """The model input, the file's size and when its download ended.

        The downloaded file lives only until it is decoded: one copy, held within ``lease``
        (admitted for ``declared`` bytes).
        """
        data: bytearray | None = None
        try:
            data = await self.fetch(picture, lease, declared)
            nbytes, downloaded = len(data), time.perf_counter()
            image = await self.classifier.decode_async(data, held=lease.nbytes)
            return image, nbytes, downloaded
        finally:
            data = None  # freed now, not when a traceback that saw it is dropped

    async def reply(
        self, message: Message, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> Message | None:
        """Answer ``message`` with ``text``; None when it may have been delivered and failed
        (never sent twice: see ``reply_once``)."""
        return await reply_once(
            message,
            lambda quote: message.reply_text(text, reply_parameters=quote, reply_markup=markup),
            "sendMessage",
        )

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
