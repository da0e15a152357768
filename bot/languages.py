"""Which language each update is answered in, and ``/language`` to choose it for a chat.

Before any handler (and before the allow-list, so a refusal is understood too) every update
gets its language (``bot.i18n.use``): the chat's choice, else the sender's Telegram
``language_code``, else English. Telegram's guess is sometimes missing or wrong: the choice is
how a user fixes it. In a group only its admins choose, for everyone in it.

Choices are kept in the votes' database (``FeedbackStore``), read all at once (one row per
chat that chose) and read again at most every ``REFRESH_S`` seconds, so replicas sharing a
database agree within that and no update waits on the database otherwise. With FEEDBACK off
there is no database: a choice then lasts until the bot restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time

from telegram import (
    Bot,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from nothotdog.bot import i18n, replies
from nothotdog.bot.feedback import FeedbackStore, StoreError
from nothotdog.bot.logs import fields
from nothotdog.bot.retry import answer_button, reply, with_retries
from nothotdog.bot.votes import on_unknown_button

log = logging.getLogger(__name__)

BUTTON_PREFIX = "language:"  # a language button's data: "language:de"
BUTTONS_PER_ROW = 3
REFRESH_S = 60.0
ADMINS = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})


class Languages:
    """The chats' choices, and the handlers that set them."""

    def __init__(self, store: FeedbackStore | None) -> None:
        self.store = store  # None: FEEDBACK=false, choices kept in memory only
        self.chosen: dict[str, str] = {}  # chat key (see _key) -> language
        self.loaded_at: float | None = None
        self._loading = asyncio.Lock()
        self._chosen_meanwhile: dict[str, str] = {}  # while a read is under way: not in it

    def handlers(self) -> list[BaseHandler]:
        """``/language`` and its buttons (ahead of the catch-all for unknown buttons)."""
        return [
            CommandHandler("language", self.on_command, filters=filters.UpdateType.MESSAGE),
            CallbackQueryHandler(self.on_button, pattern=f"^{BUTTON_PREFIX}"),
        ]

    async def speak(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Runs first for every update: the rest of it is answered in its chat's language."""
        chat, user = update.effective_chat, update.effective_user
        chosen = await self.choice(chat.id) if chat is not None else None
        i18n.use(i18n.pick(chosen, user.language_code if user is not None else None))

    async def choice(self, chat_id: int) -> str | None:
        """The language ``chat_id`` chose, if any."""
        await self._refresh()
        return self.chosen.get(self._key(chat_id)) if self.chosen else None

    async def choose(self, chat_id: int, language: str) -> bool:
        """Keep ``language`` for ``chat_id``; False when the database could not."""
        if self.store is not None:
            try:
                await self.store.run(self.store.set_language, chat_id, language)
            except StoreError as exc:
                log.warning("language not saved %s", fields(error=type(exc).__name__, detail=exc))
                return False
        self.chosen[self._key(chat_id)] = language
        if self._loading.locked():
            self._chosen_meanwhile[self._key(chat_id)] = language
        log.info("language chosen %s", fields(language=language))
        return True

    def forget(self, chat_id: int) -> None:
        """The chat's choice, deleted from the store, is forgotten here too."""
        if self.chosen:
            self.chosen.pop(self._key(chat_id), None)

    def _key(self, chat_id: int) -> str:
        # The store is open whenever a choice is known (it was read or written), so hashing
        # needs no database call here.
        return self.store.user_hash(chat_id) if self.store is not None else str(chat_id)

    async def _refresh(self) -> None:
        """Read every choice when none was read for REFRESH_S. Updates that arrive meanwhile
        wait only for the first read; later, they go on with what was read before."""
        if self.store is None:
            return
        fresh = self.loaded_at is not None and time.monotonic() - self.loaded_at < REFRESH_S
        if fresh or (self._loading.locked() and self.loaded_at is not None):
            return
        async with self._loading:
            if self.loaded_at is not None and time.monotonic() - self.loaded_at < REFRESH_S:
                return  # read by the update that held the lock
            self._chosen_meanwhile = {}
            try:
                read = await self.store.run(self.store.languages)
                self.chosen = {**read, **self._chosen_meanwhile}
            except StoreError as exc:  # answered in the sender's language; tried again later
                log.warning("cannot read languages %s", fields(error=type(exc).__name__))
            self.loaded_at = time.monotonic()

    # --- /language -------------------------------------------------------------------------

    async def change(self, bot: Bot, chat: Chat, user: User | None, message: Message | None,
                     language: str) -> str | None:  # fmt: skip
        """Choose ``language`` for ``chat`` if ``user`` may (see :func:`may_choose`); the rest
        of this update speaks it. None when done, else the sentence saying why not."""
        if not await may_choose(bot, chat, user, message):
            return replies.language_admins_only()
        if not await self.choose(chat.id, language):
            return replies.vote_not_saved()
        i18n.use(language)
        return None

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/language``: the buttons; ``/language de``: that language at once."""
        message = update.effective_message
        assert message is not None  # guaranteed by the handler's filters
        if not context.args:
            await reply(message, replies.language_menu(i18n.name(i18n.current())),
                        markup=keyboard())  # fmt: skip
            return
        language = i18n.primary(context.args[0])
        if language not in i18n.LANGUAGES:
            await reply(message, replies.language_unknown(context.args[0][:16], i18n.LANGUAGES))
            return
        refused = await self.change(context.bot, message.chat, message.from_user, message, language)
        await reply(message, refused or replies.language_set(i18n.name(language)))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A language button: chosen, and the buttons' message says so in that language."""
        query = update.callback_query
        assert query is not None
        language = (query.data or "").removeprefix(BUTTON_PREFIX)
        message = query.message
        if language not in i18n.LANGUAGES or not isinstance(message, Message):
            await on_unknown_button(update, context)
            return
        refused = await self.change(context.bot, message.chat, query.from_user, None, language)
        await answer_button(query, refused)
        if refused:
            return
        text = replies.language_set(i18n.name(language))
        try:  # the buttons go: the choice is made
            await with_retries(lambda: message.edit_text(text), "editMessageText")
        except BadRequest as exc:  # "message is not modified": the same language again
            log.debug("language message not updated: %s", exc)


def keyboard() -> InlineKeyboardMarkup:
    """One button per language, named in itself."""
    buttons = [InlineKeyboardButton(i18n.name(code), callback_data=BUTTON_PREFIX + code)
               for code in i18n.LANGUAGES]  # fmt: skip
    rows = [buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(rows)


async def may_choose(bot: Bot, chat: Chat, user: User | None, message: Message | None) -> bool:
    """Anyone in a private chat; in a group, its admins (asked of Telegram: getChatMember),
    an anonymous admin (who writes as the group itself) included."""
    if chat.type == ChatType.PRIVATE:
        return True
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id == chat.id
    if user is None:
        return False
    member = await with_retries(lambda: bot.get_chat_member(chat.id, user.id), "getChatMember")
    return member.status in ADMINS
