"""The votes: "Right" / "Wrong" under a verdict, kept in the store, counted on the buttons.

A verdict's photo and prediction are kept in memory (never on disk) for its buttons; a press
on an older verdict (one sent before a restart, or by another replica) judges its photo again,
through the same judging path as every verdict, logged and counted.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from nothotdog.bot import replies
from nothotdog.bot.classifier import Verdict
from nothotdog.bot.feedback import FeedbackStore, StoreError, Vote
from nothotdog.bot.logs import fields
from nothotdog.bot.metrics import BotMetrics
from nothotdog.bot.outcomes import Judged, Photo
from nothotdog.bot.pictures import Judge, photo_in
from nothotdog.bot.retry import answer_button, with_retries
from nothotdog.contract import ModelSpec

log = logging.getLogger(__name__)

WHY_BUTTON_DATA = "why"
VOTE_DATA = {"vote:right": True, "vote:wrong": False}  # what each feedback button sends
VOTE_PATTERN = "^vote:"
# Verdicts whose prediction is kept in memory for their buttons.
KEEP_PREDICTIONS = 10_000


@dataclass(frozen=True)
class Prediction:
    """What a verdict message said about which photo."""

    photo: Photo
    verdict: Verdict


class Votes:
    """The buttons under a verdict and what a press on "Right" or "Wrong" does."""

    def __init__(
        self,
        store: FeedbackStore | None,  # None: FEEDBACK=false, no vote buttons, nothing kept
        spec: ModelSpec,
        metrics: BotMetrics,
        judge: Judge,
        why_button: bool,
    ) -> None:
        self.store = store
        self.spec = spec
        self.metrics = metrics
        self.judge = judge
        self.why_button = why_button
        self.predictions: OrderedDict[tuple[int, int], Prediction] = OrderedDict()

    def keyboard(self, counts: tuple[int, int] | None = None) -> InlineKeyboardMarkup | None:
        """Under a verdict: "Right"/"Wrong" (with the votes so far, once there are some) and
        "Why?", as the settings ask."""
        rows = []
        if self.store is not None:
            texts = replies.vote_buttons(counts)
            rows.append([InlineKeyboardButton(text, callback_data=data)
                         for text, data in zip(texts, VOTE_DATA, strict=True)])  # fmt: skip
        if self.why_button:
            rows.append([InlineKeyboardButton(replies.why_button(), callback_data=WHY_BUTTON_DATA)])
        return InlineKeyboardMarkup(rows) if rows else None

    def remember(self, sent: Message, photo: Photo, verdict: Verdict) -> None:
        """``sent`` (a verdict) said ``verdict`` about ``photo``: kept for its vote buttons."""
        if self.store is None:
            return
        self.predictions[(sent.chat.id, sent.message_id)] = Prediction(photo, verdict)
        if len(self.predictions) > KEEP_PREDICTIONS:
            self.predictions.popitem(last=False)

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A press on "Right" or "Wrong": kept (a second press changes the vote), answered at
        once, and the buttons show the votes so far."""
        query = update.callback_query
        assert query is not None
        right = VOTE_DATA.get(query.data or "")
        message = query.message
        if right is None or self.store is None or not isinstance(message, Message):
            await on_unknown_button(update, context)
            return
        prediction = await self._prediction(update, message)
        if prediction is None:
            await answer_button(query, replies.photo_gone())
            return
        vote = self._vote(prediction, message.chat.type, query.from_user.id, right)
        try:
            counts = await self.store.run(self.store.save, vote)
        except StoreError as exc:
            log.warning("vote not saved %s", fields(error=type(exc).__name__, detail=exc))
            await answer_button(query, replies.vote_not_saved())
            return
        self.metrics.voted(right)
        await answer_button(query, replies.vote_thanks())
        try:
            await with_retries(lambda: message.edit_reply_markup(self.keyboard(counts)),
                               "editMessageReplyMarkup")  # fmt: skip
        except BadRequest as exc:  # "message is not modified": the same counts already shown
            log.debug("buttons not updated: %s", exc)

    async def _prediction(self, update: Update, verdict: Message) -> Prediction | None:
        """What ``verdict`` said; judged again when it is not in memory (None: the photo is
        gone, or could not be judged)."""
        prediction = self.predictions.get((verdict.chat.id, verdict.message_id))
        if prediction is not None:
            return prediction
        photo = photo_in(verdict.reply_to_message, self.spec.input_size)
        if photo is None:
            return None
        outcome = await self.judge(update, verdict, photo, "vote")
        return Prediction(photo, outcome.verdict) if isinstance(outcome, Judged) else None

    def _vote(self, prediction: Prediction, chat_type: str, user_id: int, right: bool) -> Vote:
        spec, verdict = self.spec, prediction.verdict
        label: str | None = verdict.label
        if not right:  # the other label, when there is only one other
            others = [name for name in spec.labels if name != verdict.label]
            label = others[0] if len(others) == 1 else None
        return Vote(file_unique_id=prediction.photo.unique_id, file_id=prediction.photo.file_id,
                    chat_type=chat_type, user_id=user_id, model_name=spec.name,
                    model_version=spec.version, p_positive=verdict.p_positive,
                    verdict=verdict.label, right=right, label=label)  # fmt: skip


async def on_unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button this bot did not make (or made before it changed): said so, no error."""
    assert update.callback_query is not None
    log.info("unknown button %s", fields(data=update.callback_query.data))
    await answer_button(update.callback_query, replies.unknown_button())
