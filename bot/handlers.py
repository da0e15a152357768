"""Telegram in, text out: which messages the bot answers, and with what.

Thin callbacks: each picks the file to look at, hands it to the pipeline as a ``Photo`` and
sends ``replies``' sentence for the outcome. Everything between a file and its verdict (or
``/why`` picture) is ``bot.pipeline``'s.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from telegram import (
    CallbackQuery,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    PhotoSize,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from nothotdog.bot import replies
from nothotdog.bot.access import Cooldown
from nothotdog.bot.albums import Albums
from nothotdog.bot.feedback import FeedbackStore, StoreError, Vote
from nothotdog.bot.logs import fields
from nothotdog.bot.metrics import BotMetrics
from nothotdog.bot.pipeline import (
    PICTURE_MIN_SIDE,
    Judged,
    Outcome,
    Photo,
    Pipeline,
    Refused,
    Verdict,
)
from nothotdog.bot.retry import reply_once, with_retries
from nothotdog.bot.settings import Settings
from nothotdog.contract.layout import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

LEAVE_AGAIN_S = 60.0  # an outsider group that re-adds the bot is left again, at most this often
WHY_BUTTON_DATA = "why"
VOTE_DATA = {"vote:right": True, "vote:wrong": False}  # what each feedback button sends
# Verdicts whose prediction is kept in memory for their buttons. A press on an older one (or
# one sent before a restart, or by another replica) judges its photo again.
KEEP_PREDICTIONS = 10_000
# Vector drawings are "image/*" too, but Pillow cannot read them: told so without a download.
VECTOR_MIME_TYPES = frozenset({"image/svg+xml"})


def is_image_document(document: Document) -> bool:
    """By MIME type, or by extension when a client sent a generic type for an image."""
    mime = (document.mime_type or "").lower()
    if mime in VECTOR_MIME_TYPES:
        return False
    if mime.startswith("image/"):
        return True
    return PurePath((document.file_name or "").lower()).suffix in IMAGE_SUFFIXES


class _ImageDocument(filters.MessageFilter):
    def filter(self, message: Message) -> bool:
        return message.document is not None and is_image_document(message.document)


IMAGE_DOCUMENT = _ImageDocument(name="IMAGE_DOCUMENT")


def pick_photo_size(sizes: Sequence[PhotoSize], min_side: int) -> PhotoSize:
    """The smallest size whose shorter side still covers ``min_side``, else the largest.

    Telegram sends each photo in several sizes; downloading and decoding a 1280 px JPEG to
    shrink it to 224 px wastes time when a 320 px one is there.
    """
    adequate = [s for s in sizes if min(s.width, s.height) >= min_side]
    if adequate:
        return min(adequate, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


def photo_in(message: Message | None, min_side: int) -> Photo | None:
    """The file to judge in ``message``: a photo's fitting size, or an image document (with
    Telegram's preview, used when the file is over MAX_FILE_MB)."""
    if message is None:
        return None
    if message.photo:
        size = pick_photo_size(message.photo, min_side)
        return Photo(size.file_id, size.file_size, unique_id=size.file_unique_id)
    document = message.document
    if document is None or not is_image_document(document):
        return None
    thumb = document.thumbnail
    preview = Photo(thumb.file_id, thumb.file_size) if thumb is not None else None
    return Photo(document.file_id, document.file_size, preview, document.file_unique_id)


@dataclass(frozen=True)
class Prediction:
    """What a verdict message said about which photo: kept in memory (not on disk) until
    someone votes on it."""

    photo: Photo
    verdict: Verdict


class BotHandlers:
    """The callbacks, bound to one pipeline and one set of settings."""

    def __init__(
        self,
        pipeline: Pipeline,
        settings: Settings,
        metrics: BotMetrics,
        store: FeedbackStore | None = None,  # None: FEEDBACK=false, no buttons, nothing kept
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.predictions: OrderedDict[tuple[int, int], Prediction] = OrderedDict()
        self.refusals = Cooldown(settings.outsider_reply_minutes * 60)
        self.leaves = Cooldown(LEAVE_AGAIN_S)
        self.albums = Albums(settings.album_wait_s, self.answer_album)
        self.can_explain = pipeline.model.has_heatmap
        # The file's heatmap shows the positive label against the rest: for two classes that
        # explains either answer, for more it would not show the label the bot answered.
        self.why_fits = pipeline.spec.two_class
        self.show_why = settings.show_why_button and self.can_explain and self.why_fits

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
                CommandHandler("classify", self.classify, filters=new),
                CommandHandler("why", self.why, filters=new),
                CommandHandler("privacy", self.privacy, filters=new),
                CommandHandler("forget", self.forget, filters=new),
                CallbackQueryHandler(self.on_why_button, pattern=f"^{WHY_BUTTON_DATA}$"),
                CallbackQueryHandler(self.on_vote, pattern="^vote:"),
                CallbackQueryHandler(self.on_unknown_button),
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
        if chat is None or chat.id in (self.settings.allowed_chat_ids or ()):
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
        await self.reply(_message(update), replies.start(self.pipeline.spec))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update),
                         replies.help_text(self.settings.max_file_mb, self.pipeline.spec))

    async def about(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.about(self.pipeline.spec))

    async def hotdog(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/hotdog`` as a reply to a photo: works in groups even with privacy mode on."""
        await self.classify_reply(update, "hotdog")

    async def classify(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/classify``: ``/hotdog`` under a name that reads right for any model."""
        await self.classify_reply(update, "classify")

    async def classify_reply(self, update: Update, command: str) -> None:
        message = _message(update)
        target = message.reply_to_message
        photo = photo_in(target, self.pipeline.spec.input_size)
        if target is not None and photo is not None:
            await self.answer(update, target, photo, source="command")
        elif target is not None and target.document is not None:
            await self.reply(message, replies.not_an_image())
        else:
            await self.reply(message, replies.hotdog_usage(command))

    async def why(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/why`` as a reply to a photo: the photo with the model's heatmap over it."""
        message = _message(update)
        target = message.reply_to_message
        photo = photo_in(target, PICTURE_MIN_SIDE)
        if target is None or photo is None:
            has_file = target is not None and target.document is not None
            await self.reply(message, replies.not_an_image() if has_file else replies.why_usage())
            return
        await self.explain(update, photo, answer_to=target, source="command")

    async def on_why_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The button under a verdict; the verdict replies to the photo, so the photo is the
        message the verdict replies to."""
        query = update.callback_query
        assert query is not None
        await _answer_button(query, None)  # the picture itself comes as a message
        verdict = query.message
        if not isinstance(verdict, Message):
            return  # too old for Telegram to show us: nothing to reply to
        photo = photo_in(verdict.reply_to_message, PICTURE_MIN_SIDE)
        if photo is None:
            await self.reply(verdict, replies.photo_gone())
            return
        await self.explain(update, photo, answer_to=verdict, source="button")

    # --- pictures and everything else -------------------------------------------------------

    async def on_picture(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A picture on its own gets its own answer; an album's pictures share one."""
        message = _message(update)
        photo = photo_in(message, self.pipeline.spec.input_size)
        if photo is None:
            return
        source = "photo" if message.photo else "document"
        if self.albums.accepts(message):
            await self.albums.add(message, self.judge(update, message, photo, source))
        else:
            await self.answer(update, message, photo, source=source)

    async def on_other_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.not_an_image())

    async def on_other_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.hotdog_usage_private(self.pipeline.spec))

    async def judge(self, update: Update, message: Message, photo: Photo, source: str) -> Outcome:
        """The pipeline's outcome for ``photo``, logged and counted."""
        outcome = await self.pipeline.judge(photo)
        self.record(outcome, update, message, source)
        return outcome

    async def answer(self, update: Update, message: Message, photo: Photo, *, source: str) -> None:
        """Judge one picture and reply to it; every outcome gets a sentence, a verdict its
        buttons."""
        outcome = await self.judge(update, message, photo, source)
        markup = self.buttons() if isinstance(outcome, Judged) else None
        sent = await self.reply(message, self.text(outcome), markup=markup)
        self.metrics.observe(outcome)
        if sent is not None and self.store is not None and isinstance(outcome, Judged):
            self.predictions[(sent.chat.id, sent.message_id)] = Prediction(photo, outcome.verdict)
            if len(self.predictions) > KEEP_PREDICTIONS:
                self.predictions.popitem(last=False)

    def buttons(self, votes: tuple[int, int] | None = None) -> InlineKeyboardMarkup | None:
        """Under a verdict: "Right"/"Wrong" (with the votes so far, once there are some) and
        "Why?", as the settings ask."""
        rows = []
        if self.store is not None:
            texts = replies.vote_buttons(votes)
            rows.append([InlineKeyboardButton(text, callback_data=data)
                         for text, data in zip(texts, VOTE_DATA, strict=True)])  # fmt: skip
        if self.show_why:
            rows.append([InlineKeyboardButton(replies.why_button(), callback_data=WHY_BUTTON_DATA)])
        return InlineKeyboardMarkup(rows) if rows else None

    # --- feedback -----------------------------------------------------------------------

    async def on_vote(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A press on "Right" or "Wrong": kept (a second press changes the vote), answered at
        once, and the buttons show the votes so far."""
        query = update.callback_query
        assert query is not None
        right = VOTE_DATA.get(query.data or "")
        message = query.message
        if right is None or self.store is None or not isinstance(message, Message):
            await self.on_unknown_button(update, context)
            return
        prediction = self.predictions.get((message.chat.id, message.message_id))
        if prediction is None:  # sent before a restart, or by another replica: look again
            photo = photo_in(message.reply_to_message, self.pipeline.spec.input_size)
            outcome = await self.pipeline.judge(photo) if photo is not None else None
            if photo is None or not isinstance(outcome, Judged):
                await _answer_button(query, replies.photo_gone())
                return
            prediction = Prediction(photo, outcome.verdict)
        vote = self.vote(prediction, message.chat.type, query.from_user.id, right)
        try:
            counts = await self.store.run(self.store.record, vote)
        except StoreError as exc:
            log.warning("vote not saved %s", fields(error=type(exc).__name__, detail=exc))
            await _answer_button(query, replies.vote_not_saved())
            return
        self.metrics.votes.labels(vote="right" if right else "wrong").inc()
        await _answer_button(query, replies.vote_thanks())
        try:
            await with_retries(lambda: message.edit_reply_markup(self.buttons(counts)),
                               "editMessageReplyMarkup")  # fmt: skip
        except BadRequest as exc:  # "message is not modified": the same counts already shown
            log.debug("buttons not updated: %s", exc)

    def vote(self, prediction: Prediction, chat_type: str, user_id: int, right: bool) -> Vote:
        spec, verdict = self.pipeline.spec, prediction.verdict
        label: str | None = verdict.label
        if not right:  # the other label, when there is only one other
            others = [name for name in spec.labels if name != verdict.label]
            label = others[0] if len(others) == 1 else None
        return Vote(file_unique_id=prediction.photo.unique_id, file_id=prediction.photo.file_id,
                    chat_type=chat_type, user_id=user_id, model_name=spec.name,
                    model_version=spec.version, p_positive=verdict.p_positive,
                    verdict=verdict.label, right=right, label=label)  # fmt: skip

    async def on_unknown_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button this bot did not make (or made before it changed): said so, no error."""
        assert update.callback_query is not None
        log.info("unknown button %s", fields(data=update.callback_query.data))
        await _answer_button(update.callback_query, replies.unknown_button())

    async def privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(_message(update), replies.privacy(self.store is not None))

    async def forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/forget``: every vote of this user deleted, and how many there were."""
        message, user = _message(update), update.effective_user
        if self.store is None or user is None:
            await self.reply(message, replies.forgotten(0))
            return
        try:
            deleted = await self.store.run(self.store.forget, user.id)
        except StoreError as exc:
            log.warning("forget failed %s", fields(error=type(exc).__name__, detail=exc))
            await self.reply(message, replies.vote_not_saved())
            return
        log.info("forgot %s", fields(votes=deleted))
        await self.reply(message, replies.forgotten(deleted))

    async def answer_album(self, first: Message, outcomes: Sequence[Outcome | None]) -> None:
        """One reply to the album's first picture, each picture's verdict in order."""
        pairs = [(o.verdict if isinstance(o, Judged) else None, self.text(o)) for o in outcomes]
        await self.reply(first, replies.album(pairs, self.settings.show_confidence,
                                              self.pipeline.spec))
        for outcome in outcomes:
            if outcome is not None:
                self.metrics.observe(outcome)
        log.info("album answered %s", fields(chat_type=first.chat.type, pictures=len(outcomes),
                                             media_group_id=first.media_group_id))  # fmt: skip

    async def explain(self, update: Update, photo: Photo, *, answer_to: Message, source: str
                      ) -> None:  # fmt: skip
        """The ``/why`` picture for ``photo``, sent as a reply to ``answer_to``."""
        if not self.can_explain:
            await self.reply(answer_to, replies.cant_explain())
            return
        if not self.why_fits:
            await self.reply(answer_to, replies.why_two_class_only())
            return
        outcome = await self.pipeline.explain(photo)
        self.record(outcome, update, answer_to, f"why_{source}")
        if not isinstance(outcome, Judged) or outcome.picture is None:
            await self.reply(answer_to, self.text(outcome))
            return
        caption = replies.why_caption(outcome.verdict, self.pipeline.spec)
        if outcome.from_preview:
            caption = replies.from_preview(caption, self.settings.max_file_mb)
        picture = outcome.picture
        await reply_once(
            answer_to,
            lambda quote: answer_to.reply_photo(picture, caption=caption, reply_parameters=quote),
            "sendPhoto",
        )
        self.metrics.explained.inc()

    def text(self, outcome: Outcome | None) -> str:
        """The sentence for one picture's outcome (None: judging it failed)."""
        if outcome is None:
            return replies.failed()
        if isinstance(outcome, Refused):
            return replies.refusal(outcome, self.settings.max_file_mb)
        max_mb = self.settings.max_file_mb
        text = replies.verdict(outcome.verdict, self.pipeline.spec, self.settings.show_confidence)
        return replies.from_preview(text, max_mb) if outcome.from_preview else text

    def record(self, outcome: Outcome, update: Update, message: Message, source: str) -> None:
        """One log line per outcome, with where its time went; refusals are counted."""
        info = {"update_id": update.update_id, "chat_type": message.chat.type, "source": source}
        if isinstance(outcome, Refused):
            self.metrics.refused(outcome.reason)
            level = logging.WARNING if outcome.reason == "busy" else logging.INFO
            log.log(level, "refused %s", fields(**info, reason=outcome.reason,
                                                detail=outcome.detail, bytes=outcome.size))
            return
        v = outcome
        log.info("classified %s", fields(
            **info, label=v.verdict.label, probability=round(v.verdict.probability, 4),
            preview=v.from_preview, wait_ms=v.wait_s * 1000, download_ms=v.download_s * 1000,
            decode_ms=v.decode_s * 1000, infer_ms=v.infer_s * 1000, bytes=v.nbytes,
        ))  # fmt: skip

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
        log.error("update failed %s", fields(update_id=update_id, error=type(error).__name__),
                  exc_info=error)  # fmt: skip
        message = update.effective_message if isinstance(update, Update) else None
        if message is not None:
            try:
                await self.reply(message, replies.failed())
            except TelegramError as exc:
                log.error("could not tell the user %s", fields(update_id=update_id, error=exc))


async def _answer_button(query: CallbackQuery, text: str | None) -> None:
    """Answer a press (its spinner stops and ``text`` pops up); a failure is only logged: the
    press may be too old for Telegram to take an answer."""
    try:
        await query.answer(text)
    except TelegramError as exc:
        log.warning("could not answer the button %s", fields(error=exc))


def _message(update: Update) -> Message:
    assert update.effective_message is not None  # guaranteed by the handlers' filters
    return update.effective_message
