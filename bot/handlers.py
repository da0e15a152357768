"""Telegram in, text out: which messages the bot answers, and with what.

Thin callbacks: each picks the file to look at (``bot.pictures``), hands it to the pipeline
as a ``Photo`` and sends ``replies``' sentence for the outcome. The allow-list is
``bot.access``'s, the vote buttons ``bot.votes``', ``/why`` ``bot.why``'s, the language of
each update and ``/language`` ``bot.languages``'; everything between a file and its verdict
is ``bot.pipeline``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from nothotdog.bot import replies, teach_replies
from nothotdog.bot.access import Gate
from nothotdog.bot.albums import Albums
from nothotdog.bot.classifier import why_unavailable
from nothotdog.bot.feedback import FeedbackStore, StoreError
from nothotdog.bot.languages import Languages
from nothotdog.bot.logs import fields
from nothotdog.bot.metrics import BotMetrics
from nothotdog.bot.outcomes import Judged, Outcome, Photo, Refused
from nothotdog.bot.pictures import IMAGE_DOCUMENT, MOVING, kind_of, photo_in, without_preview
from nothotdog.bot.pipeline import Pipeline
from nothotdog.bot.retry import reply
from nothotdog.bot.settings import Settings
from nothotdog.bot.teach import Teaching
from nothotdog.bot.votes import VOTE_PATTERN, WHY_BUTTON_DATA, Votes, on_unknown_button
from nothotdog.bot.why import Why

log = logging.getLogger(__name__)


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
        self.spec = pipeline.spec
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.albums = Albums(settings.album_wait_s, self.answer_album)
        no_why = why_unavailable(pipeline.model)
        self.why = Why(self.spec, no_why, settings, metrics, self.judged)
        self.votes = Votes(store, self.spec, metrics, self.judged,
                           why_button=settings.show_why_button and no_why is None)  # fmt: skip
        self.languages = Languages(store)
        self.teaching = Teaching(pipeline.model, store, settings, self.judged)

    def register(self, app: Application) -> None:
        # First of all, so that every reply of the update (a refusal too) is in its language.
        app.add_handler(TypeHandler(Update, self.languages.speak), group=-2)
        allowed = self.settings.allowed_chat_ids
        if allowed is not None:
            gate = Gate(allowed, self.settings.outsider_reply_minutes * 60)
            app.add_handler(TypeHandler(Update, gate.check), group=-1)
        new = filters.UpdateType.MESSAGE  # not edits: a changed caption is not a new photo
        private = filters.ChatType.PRIVATE
        app.add_handlers(
            [
                CommandHandler("start", self.start, filters=new),
                CommandHandler("help", self.help, filters=new),
                CommandHandler("about", self.about, filters=new),
                CommandHandler("hotdog", self.hotdog, filters=new),
                CommandHandler("classify", self.classify, filters=new),
                CommandHandler("why", self.why.on_command, filters=new),
                CommandHandler("privacy", self.privacy, filters=new),
                CommandHandler("forget", self.forget, filters=new),
                *self.languages.handlers(),
                *self.teaching.handlers(new),
                CallbackQueryHandler(self.why.on_button, pattern=f"^{WHY_BUTTON_DATA}$"),
                CallbackQueryHandler(self.votes.on_press, pattern=VOTE_PATTERN),
                CallbackQueryHandler(on_unknown_button),
                MessageHandler(new & (filters.PHOTO | IMAGE_DOCUMENT | MOVING), self.on_picture),
                # In groups, other files are none of our business: silence.
                MessageHandler(new & private & filters.Document.ALL, self.on_other_document),
                MessageHandler(new & private, self.on_other_private),
            ]
        )
        app.add_error_handler(self.on_error)

    # --- commands ---------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await reply(_message(update), replies.start(self.spec))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = replies.help_text(self.settings.max_file_mb, self.spec)
        if self.teaching.offered:
            text += "\n" + teach_replies.help_line()
        await reply(_message(update), text)

    async def about(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await reply(_message(update), replies.about(self.spec))

    async def hotdog(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/hotdog`` as a reply to a photo: works in groups even with privacy mode on."""
        await self.classify_reply(update, "hotdog")

    async def classify(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/classify``: ``/hotdog`` under a name that reads right for any model."""
        await self.classify_reply(update, "classify")

    async def classify_reply(self, update: Update, command: str) -> None:
        message = _message(update)
        target = message.reply_to_message
        photo = photo_in(target, self.spec.input_size)
        if target is not None and photo is not None:
            await self.answer(update, target, photo, source="command")
        elif without_preview(target):
            await reply(message, replies.no_preview())
        elif target is not None and target.document is not None:
            await reply(message, replies.not_an_image())
        else:
            await reply(message, replies.hotdog_usage(command))

    async def privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = replies.privacy(self.store is not None)
        if self.teaching.offered:
            text += "\n\n" + teach_replies.privacy()
        await reply(_message(update), text)

    async def forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/forget``: every vote of this user deleted, and how many there were."""
        message, user = _message(update), update.effective_user
        if self.store is None or user is None:
            await reply(message, replies.forgotten(0))
            return
        try:
            deleted = await self.store.run(self.store.forget, user.id)
            taught = await self.teaching.forget(user.id)
        except StoreError as exc:
            log.warning("forget failed %s", fields(error=type(exc).__name__, detail=exc))
            await reply(message, replies.vote_not_saved())
            return
        self.languages.forget(user.id)  # the store deleted their private chat's choice too
        log.info("forgot %s", fields(votes=deleted, taught=taught))
        texts = [replies.forgotten(deleted) if deleted or not taught else "",
                 teach_replies.forgotten(taught)]  # fmt: skip
        await reply(message, "\n".join(text for text in texts if text))

    # --- pictures and everything else -------------------------------------------------------

    async def on_picture(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A picture on its own gets its own answer; an album's pictures share one."""
        message = _message(update)
        photo = photo_in(message, self.spec.input_size)
        if photo is None:
            if without_preview(message):
                await reply(message, replies.no_preview())
            return
        source = kind_of(message) or "document"
        if await self.teaching.take(update, message, photo, source):
            return  # an example being taught, or a photo for the chat's own labels
        if self.albums.accepts(message):
            await self.albums.add(message, self.judged(update, message, photo, source))
        else:
            await self.answer(update, message, photo, source=source)

    async def on_other_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await reply(_message(update), replies.not_an_image())

    async def on_other_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await reply(_message(update), replies.hotdog_usage_private(self.spec))

    async def judged(self, update: Update, message: Message, photo: Photo, source: str, *,
                     picture: bool = False, features: bool = False) -> Outcome:  # fmt: skip
        """The pipeline's outcome for ``photo``, logged and counted (a ``pictures.Judge``)."""
        outcome = await self.pipeline.judge(photo, picture=picture, features=features)
        self.log_outcome(outcome, update, message, source)
        return outcome

    async def answer(self, update: Update, message: Message, photo: Photo, *, source: str) -> None:
        """Judge one picture and reply to it; every outcome gets a sentence, a verdict its
        buttons."""
        outcome = await self.judged(update, message, photo, source)
        markup = self.votes.keyboard() if isinstance(outcome, Judged) else None
        sent = await reply(message, self.text(outcome), markup=markup)
        self.metrics.observe(outcome)
        if sent is not None and isinstance(outcome, Judged):
            self.votes.remember(sent, photo, outcome.verdict)

    async def answer_album(self, first: Message, outcomes: Sequence[Outcome | None]) -> None:
        """One reply to the album's first picture, each picture's verdict in order."""
        pairs = [(o.verdict if isinstance(o, Judged) else None, self.text(o)) for o in outcomes]
        await reply(first, replies.album(pairs, self.settings.show_confidence, self.spec))
        for outcome in outcomes:
            if outcome is not None:
                self.metrics.observe(outcome)
        log.info("album answered %s", fields(chat_type=first.chat.type, pictures=len(outcomes),
                                             media_group_id=first.media_group_id))  # fmt: skip

    def text(self, outcome: Outcome | None) -> str:
        """The sentence for one picture's outcome (None: judging it failed)."""
        return replies.outcome(outcome, self.spec, self.settings.max_file_mb,
                               self.settings.show_confidence)  # fmt: skip

    def log_outcome(self, outcome: Outcome, update: Update, message: Message, source: str) -> None:
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

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log every failure with its update id (the log formatter scrubs the token)."""
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        self.metrics.failed()
        log.error("update failed %s", fields(update_id=update_id, error=type(error).__name__),
                  exc_info=error)  # fmt: skip
        message = update.effective_message if isinstance(update, Update) else None
        if message is not None:
            try:
                await reply(message, replies.failed())
            except TelegramError as exc:
                log.error("could not tell the user %s", fields(update_id=update_id, error=exc))


def _message(update: Update) -> Message:
    assert update.effective_message is not None  # guaranteed by the handlers' filters
    return update.effective_message
