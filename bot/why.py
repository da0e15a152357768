"""``/why`` and the "Why?" button: the photo with the model's heatmap over it."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import ContextTypes

from nothotdog.bot import replies
from nothotdog.bot.classifier import PICTURE_MIN_SIDE, NoWhy
from nothotdog.bot.metrics import BotMetrics
from nothotdog.bot.outcomes import Judged, Photo
from nothotdog.bot.pictures import Judge, photo_in
from nothotdog.bot.retry import answer_button, reply, reply_once
from nothotdog.bot.settings import Settings
from nothotdog.contract import ModelSpec


class Why:
    """Sends ``/why``'s picture, or says why there is none (``no_why``: this model cannot)."""

    def __init__(self, spec: ModelSpec, no_why: NoWhy | None, settings: Settings,
                 metrics: BotMetrics, judge: Judge) -> None:  # fmt: skip
        self.spec = spec
        self.no_why = no_why
        self.settings = settings
        self.metrics = metrics
        self.judge = judge

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/why`` as a reply to a photo."""
        message = update.effective_message
        assert message is not None  # guaranteed by the handler's filters
        target = message.reply_to_message
        photo = photo_in(target, PICTURE_MIN_SIDE)
        if target is None or photo is None:
            has_file = target is not None and target.document is not None
            await reply(message, replies.not_an_image() if has_file else replies.why_usage())
            return
        await self.send(update, photo, answer_to=target, source="command")

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The button under a verdict; the verdict replies to the photo, so the photo is the
        message the verdict replies to."""
        query = update.callback_query
        assert query is not None
        await answer_button(query, None)  # the picture itself comes as a message
        verdict = query.message
        if not isinstance(verdict, Message):
            return  # too old for Telegram to show us: nothing to reply to
        photo = photo_in(verdict.reply_to_message, PICTURE_MIN_SIDE)
        if photo is None:
            await reply(verdict, replies.photo_gone())
            return
        await self.send(update, photo, answer_to=verdict, source="button")

    async def send(self, update: Update, photo: Photo, *, answer_to: Message, source: str
                   ) -> None:  # fmt: skip
        """The picture for ``photo``, sent as a reply to ``answer_to``."""
        if self.no_why is not None:
            await reply(answer_to, replies.no_why(self.no_why))
            return
        outcome = await self.judge(update, answer_to, photo, f"why_{source}", picture=True)
        if not isinstance(outcome, Judged) or outcome.picture is None:
            max_mb, confident = self.settings.max_file_mb, self.settings.show_confidence
            await reply(answer_to, replies.outcome(outcome, self.spec, max_mb, confident))
            return
        caption = replies.why_caption(outcome.verdict, self.spec)
        if outcome.from_preview:
            caption = replies.from_preview(caption, self.settings.max_file_mb)
        picture = outcome.picture
        await reply_once(
            answer_to,
            lambda quote: answer_to.reply_photo(picture, caption=caption, reply_parameters=quote),
            "sendPhoto",
        )
        self.metrics.sent_why()
