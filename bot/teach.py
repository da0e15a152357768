"""Teaching the bot in a chat: ``/teach LABEL`` then photos, ``/done``; ``/labels``,
``/reset``; and a taught chat's photos answered with its own labels.

A photo the teacher sends while teaching goes through the same pipeline as every verdict,
asking for the model's features too; those numbers (never the photo) are kept with the label
(bot.examples). After ``/done`` every photo in the chat is judged the same way and answered
by the nearest label (bot.taught). The rules and the classifier are bot.taught's, the rows
bot.examples', the sentences bot.teach_replies'; this file is the Telegram side.

The chat-labels lookup runs in a thread before a photo reaches the fair line, so lookups take
turns in arrival order: otherwise a photo's lookup could finish before the one of the photo
sent before it and the later photo reach the line first (seen: a small photo admitted ahead
of the document sent before it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from telegram import Bot, Message, Update, User
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CommandHandler, ContextTypes, filters

from nothotdog.bot import replies
from nothotdog.bot import teach_replies as say
from nothotdog.bot.albums import Albums
from nothotdog.bot.examples import ChatState, ExampleStore
from nothotdog.bot.feedback import FeedbackStore, StoreError
from nothotdog.bot.languages import may_choose
from nothotdog.bot.logs import fields
from nothotdog.bot.outcomes import Photo, Refused
from nothotdog.bot.pictures import Judge
from nothotdog.bot.retry import reply
from nothotdog.bot.settings import Settings
from nothotdog.bot.taught import (
    MAX_LABELS,
    MAX_PHOTOS,
    MIN_LABELS,
    MIN_PHOTOS,
    Answer,
    NearestMean,
    clean_label,
    ready,
)
from nothotdog.contract.runtime import OnnxModel

log = logging.getLogger(__name__)
T = TypeVar("T")

KEEP_CLASSIFIERS = 1_000  # taught chats whose classifier is kept built (a few KB each)
# After the database failed to answer, photos skip the chat-labels lookup this long: a
# database that hangs must not hold up every hot-dog verdict (which need no database).
LOOKUP_PAUSE_S = 30.0


@dataclass(frozen=True)
class Kept:
    """One taught photo: its label's photos after it, or None when the label was full."""

    label: str
    count: int | None


class Teaching:
    """The commands, and the photos that are a taught chat's business."""

    def __init__(self, model: OnnxModel, store: FeedbackStore | None, settings: Settings,
                 judge: Judge) -> None:  # fmt: skip
        self.model, self.settings, self.judge = model, settings, judge
        version = f"{model.spec.name} {model.spec.version}"
        self.examples = ExampleStore(store, version) if store is not None else None
        self.taught_albums = Albums(settings.album_wait_s, self._ack_album)
        self.live_albums = Albums(settings.album_wait_s, self._answer_album)
        self._built: OrderedDict[int, tuple[int, NearestMean | None]] = OrderedDict()
        self._paused_until = 0.0  # time.monotonic(): see LOOKUP_PAUSE_S
        self._lookup_order = asyncio.Lock()  # see "in arrival order" above

    @property
    def offered(self) -> bool:
        """Whether this bot can be taught: a model with features, and a database."""
        return self.examples is not None and self.model.has_features

    def handlers(self, new: filters.BaseFilter) -> list[BaseHandler]:
        return [CommandHandler(name, callback, filters=new) for name, callback in (
            ("teach", self.teach), ("done", self.done), ("labels", self.labels),
            ("reset", self.reset))]  # fmt: skip

    # --- commands ---------------------------------------------------------------------

    async def teach(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = _message(update), update.effective_user
        if not await self._may_change(update, context) or self.examples is None or user is None:
            return
        label = clean_label(" ".join(context.args or []))
        if label is None:
            await reply(message, say.bad_label() if context.args else say.teach_usage())
            return
        counts = await self._stored(message, self.examples.teach, message.chat.id, user.id,
                                    label, MAX_LABELS)  # fmt: skip
        if counts is not None and label not in counts:
            await reply(message, say.too_many_labels())
        elif counts is not None:
            await reply(message, say.teaching(label, counts[label]))

    async def done(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _message(update)
        if not await self._may_change(update, context) or self.examples is None:
            return
        counts = await self._stored(message, self.examples.counts, message.chat.id)
        if counts is None:
            return
        taking = ready(counts)
        if len(taking) < MIN_LABELS:
            await reply(message, say.not_ready(counts))
            return
        if await self._stored(message, self.examples.finish, message.chat.id, True) is None:
            return
        left_out = {label: n for label, n in counts.items() if label not in taking}
        await reply(message, say.done({label: counts[label] for label in taking}, left_out))
        log.info("chat labels live %s", fields(chat_type=message.chat.type, labels=len(taking)))

    async def labels(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, why_not = _message(update), unavailable(self.model, self.examples)
        if why_not is not None or self.examples is None:
            await reply(message, why_not or say.needs_database())
            return
        counts = await self._stored(message, self.examples.counts, message.chat.id)
        if counts is None:
            return
        state = await self._stored(message, self.examples.state, message.chat.id)
        live, now = (state.live, state.teaching) if state is not None else (False, None)
        await reply(message, say.labels(counts, live, now))

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _message(update)
        if not await self._may_change(update, context) or self.examples is None:
            return
        deleted = await self._stored(message, self.examples.reset, message.chat.id)
        if deleted is not None:
            self._built.pop(message.chat.id, None)
            await reply(message, say.reset(deleted))

    async def forget(self, user_id: int) -> int:
        """``/forget``: every photo ``user_id`` taught, deleted (StoreError if it failed)."""
        examples = self.examples
        return 0 if examples is None else await examples.feedback.run(examples.forget, user_id)

    # --- photos -----------------------------------------------------------------------

    async def take(self, update: Update, message: Message, photo: Photo, source: str) -> bool:
        """Answer ``photo`` if it is the chat's business (an example being taught, or a photo
        for the chat's own labels) and say True; False leaves it to the hot-dog verdict."""
        if not self.offered or time.monotonic() < self._paused_until:
            return False
        assert self.examples is not None
        examples, chat, user = self.examples, message.chat.id, message.from_user
        try:
            async with self._lookup_order:
                state: ChatState | None = await examples.feedback.run(examples.state, chat)
            if state is None:
                return False  # never taught: nearly every chat, one primary-key read
            if state.teaching and user is not None and state.teacher_hash == examples.key(user.id):
                learn = self._learn(update, message, photo, source, state.teaching, user.id)
                await one_or_album(self.taught_albums, message, learn, self._ack_one)
                return True
            classifier = await self._classifier(chat, state) if state.live else None
        except StoreError as exc:  # the hot-dog verdict needs no database: it answers
            log.warning("chat labels unreadable %s", fields(error=type(exc).__name__))
            self._paused_until = time.monotonic() + LOOKUP_PAUSE_S
            return False
        if classifier is None:
            return False
        answer = self._answer(update, message, photo, source, classifier)
        await one_or_album(self.live_albums, message, answer, self._answer_one)
        return True

    async def _learn(self, update: Update, message: Message, photo: Photo, source: str,
                     label: str, user_id: int) -> Kept | Refused:  # fmt: skip
        outcome = await self.judge(update, message, photo, source, features=True)
        if isinstance(outcome, Refused):
            return outcome
        assert self.examples is not None and outcome.features is not None
        count = await self.examples.feedback.run(self.examples.add, message.chat.id, user_id,
                                                 label, outcome.features, MAX_PHOTOS)
        return Kept(label, count)

    async def _answer(self, update: Update, message: Message, photo: Photo, source: str,
                      classifier: NearestMean) -> Answer | Refused:  # fmt: skip
        outcome = await self.judge(update, message, photo, source, features=True)
        if isinstance(outcome, Refused):
            return outcome
        assert outcome.features is not None  # take() checked the model has them
        answer = classifier.classify(outcome.features)
        log.info("chat labels answered %s", fields(chat_type=message.chat.type, sure=answer.sure,
                                                   similarity=round(answer.similarity, 3)))
        return answer

    async def _classifier(self, chat_id: int, state: ChatState) -> NearestMean | None:
        """The chat's classifier, rebuilt only when its revision moved on; None while fewer
        than MIN_LABELS labels have MIN_PHOTOS photos (after a /forget, say)."""
        built = self._built.get(chat_id)
        if built is not None and built[0] == state.revision:
            self._built.move_to_end(chat_id)
            return built[1]
        assert self.examples is not None
        vectors = await self.examples.feedback.run(self.examples.vectors, chat_id)
        taking = {label: rows for label, rows in vectors.items() if len(rows) >= MIN_PHOTOS}
        classifier = NearestMean(taking) if len(taking) >= MIN_LABELS else None
        self._built[chat_id] = (state.revision, classifier)
        if len(self._built) > KEEP_CLASSIFIERS:
            self._built.popitem(last=False)
        return classifier

    async def _ack_one(self, message: Message, kept: Kept | Refused) -> None:
        await reply(message, "\n".join(kept_lines([kept], self.settings.max_file_mb)))

    async def _ack_album(self, first: Message, results: Sequence[Kept | Refused | None]) -> None:
        """The album's photos were kept side by side: the label's count is read once all are
        in, so it is the count after the album, whatever order they were kept in."""
        kept = [r for r in results if isinstance(r, Kept)]
        total = None
        if kept and self.examples is not None:
            with contextlib.suppress(StoreError):  # then the largest count any photo saw
                counts = await self.examples.feedback.run(self.examples.counts, first.chat.id)
                total = counts.get(kept[0].label)
        await reply(first, "\n".join(kept_lines(results, self.settings.max_file_mb, total)))

    async def _answer_one(self, message: Message, answer: Answer | Refused) -> None:
        text = (say.answer(answer, self.settings.show_confidence) if isinstance(answer, Answer)
                else refusal_text(answer, self.settings.max_file_mb))  # fmt: skip
        await reply(message, text)

    async def _answer_album(self, first: Message, answers: Sequence[Answer | Refused | None]
                            ) -> None:  # fmt: skip
        max_mb = self.settings.max_file_mb
        await reply(first, say.album([a if isinstance(a, Answer) else refusal_text(a, max_mb)
                                      for a in answers]))  # fmt: skip

    # --- who may, and the database ---------------------------------------------------------

    async def _may_change(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
        """Whether this chat's labels may be changed by this person, saying why not if not:
        the model must give features, the bot keep a database, and in groups the sender be
        an admin (getChatMember)."""
        message, user = _message(update), update.effective_user
        refusal = unavailable(self.model, self.examples)
        group = message.chat.type != ChatType.PRIVATE
        if refusal is None and group and not await _is_admin(context.bot, message, user):
            refusal = say.admins_only()
        if refusal is not None:
            await reply(message, refusal)
        return refusal is None

    async def _stored(self, message: Message, call: Callable[..., T], *args: object) -> T | None:
        """``call(*args)`` in the database's thread; None (the user told) when it failed."""
        assert self.examples is not None
        try:
            return await self.examples.feedback.run(call, *args)
        except StoreError as exc:
            log.warning("chat labels not saved %s", fields(error=type(exc).__name__, detail=exc))
            await reply(message, say.not_saved())
            return None


def unavailable(model: OnnxModel, examples: ExampleStore | None) -> str | None:
    """Why this bot cannot be taught (a model without features, no database), or None."""
    return (say.needs_newer_model() if not model.has_features
            else say.needs_database() if examples is None else None)  # fmt: skip


async def _is_admin(bot: Bot, message: Message, user: User | None) -> bool:
    try:
        return await may_choose(bot, message.chat, user, message)
    except TelegramError as exc:
        log.warning("could not ask who is admin %s", fields(error=exc))
        return False


def _message(update: Update) -> Message:
    assert update.effective_message is not None  # guaranteed by the handlers' filters
    return update.effective_message


async def one_or_album(albums: Albums, message: Message, work: Awaitable[T],
                       one: Callable[[Message, T], Awaitable[None]]) -> None:  # fmt: skip
    """An album's picture is answered with the album; any other with its own reply."""
    if albums.accepts(message):
        await albums.add(message, work)
    else:
        await one(message, await work)


def kept_lines(results: Sequence[Kept | Refused | None], max_file_mb: int,
               total: int | None = None) -> list[str]:  # fmt: skip
    """One line for the photos kept (``total``, else the largest count one saw), one if the
    label was full, one for each photo that could not be judged, numbered when there are
    several."""
    kept = [r for r in results if isinstance(r, Kept)]
    counts = [k.count for k in kept if k.count is not None]
    lines = [say.learned(kept[0].label, total or max(counts), len(counts))] if counts else []
    if len(counts) < len(kept):
        lines.append(say.label_full(kept[0].label))
    for i, result in enumerate(results, 1):
        if not isinstance(result, Kept):
            text = refusal_text(result, max_file_mb)
            lines.append(f"{i}: {text}" if len(results) > 1 else text)
    return lines


def refusal_text(refused: Refused | None, max_file_mb: int) -> str:
    """Why a photo got no answer (None: judging it failed)."""
    return replies.refusal(refused, max_file_mb) if refused is not None else replies.failed()
