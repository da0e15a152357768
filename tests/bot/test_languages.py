"""Replies in the user's language, through the real bot against the fake Bot API server: the
sender's Telegram language, /language for a chat (kept across a restart, admins only in
groups), and the command menus and descriptions set for every language at start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import Application

from nothotdog.bot import i18n, replies, teach_replies
from nothotdog.bot.app import build_application
from nothotdog.bot.settings import Settings
from nothotdog.contract.runtime import OnnxModel
from tests.bot.conftest import StartBot
from tests.bot.harness import running
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid

USER, ADMIN = 1001, 3003
GROUP = FakeTelegram.group_chat()


def button_texts(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def help_text() -> str:
    """/help of a bot that can be taught (the tiny model has features, the bot a database)."""
    return replies.help_text() + "\n" + teach_replies.help_line()


def in_(language: str, reply: Callable[[], str]) -> str:
    """``reply()`` as ``language`` says it."""
    with i18n.speaking(language):
        return reply()


@pytest.mark.parametrize(("language_code", "color", "expected"), [
    ("es", RED, "🌭 ¡Hot dog! (97%)"),
    ("de", GREEN, "🚫 Kein Hotdog (88%)"),
    ("pt-br", RED, "🌭 Cachorro-quente! (97%)"),
    ("uk", GREEN, "🚫 Не хот-дог (88%)"),
    ("xx", RED, RED_TEXT),
    (None, GREEN, GREEN_TEXT),
])  # fmt: skip
async def test_the_verdict_and_its_buttons_are_in_the_senders_language(
    telegram: FakeTelegram, bot: Application, language_code: str | None,
    color: tuple[int, int, int], expected: str,
) -> None:  # fmt: skip
    (reply,) = await telegram.replies_to(telegram.push_photo(solid(color),
                                                             language_code=language_code))
    assert reply["text"] == expected
    with i18n.speaking(i18n.pick(None, language_code)):
        assert button_texts(reply) == list(replies.vote_buttons())


async def test_language_buttons_choose_it_for_the_chat_and_it_survives_a_restart(
    telegram: FakeTelegram, settings: Settings, tiny_model: OnnxModel
) -> None:
    async with running(build_application(settings, model=tiny_model)):
        menu = telegram.push_command("/language", language_code="en")
        (shown,) = await telegram.replies_to(menu)
        assert shown["text"] == replies.language_menu("English")
        assert "Deutsch" in button_texts(shown) and len(button_texts(shown)) >= 7
        telegram.push_callback_query(shown, "language:de", user_id=USER, language_code="en")
        key = (shown["chat"]["id"], shown["message_id"])
        await telegram.wait_until(lambda: "reply_markup" not in telegram.messages[key])
        assert telegram.messages[key]["text"] == "🌍 Erledigt! Sprache dieses Chats: Deutsch."
        photo = telegram.push_photo(solid(GREEN), language_code="en")  # the choice wins
        assert await telegram.reply_text(photo) == "🚫 Kein Hotdog (88%)"
    async with running(build_application(settings, model=tiny_model)):
        photo = telegram.push_photo(solid(GREEN), language_code="en")
        assert await telegram.reply_text(photo) == "🚫 Kein Hotdog (88%)"
        back = telegram.push_command("/language en", language_code="de")
        assert await telegram.reply_text(back) == replies.language_set("English")
        assert await telegram.reply_text(telegram.push_photo(solid(GREEN))) == GREEN_TEXT


async def test_language_with_a_code_sets_it_at_once_and_a_wrong_one_is_explained(
    telegram: FakeTelegram, bot: Application
) -> None:
    wrong = telegram.push_command("/language klingon")
    assert await telegram.reply_text(wrong) == replies.language_unknown("klingon", i18n.LANGUAGES)
    done = telegram.push_command("/language PT-br")
    assert await telegram.reply_text(done) == "🌍 Pronto! Idioma desta conversa: Português."
    assert await telegram.reply_text(telegram.push_command("/help")) == in_("pt", help_text)
    other = FakeTelegram.private_chat(4004)  # another chat keeps its own language
    assert await telegram.reply_text(telegram.push_command("/help", other)) == help_text()


async def test_in_a_group_only_an_admin_changes_the_language(
    telegram: FakeTelegram, bot: Application
) -> None:
    telegram.chat_admins[GROUP["id"]] = {ADMIN}
    refused = telegram.push_command("/language ru", GROUP, user_id=USER)
    assert await telegram.reply_text(refused) == replies.language_admins_only()
    menu = telegram.push_command("/language", GROUP, user_id=USER)
    (shown,) = await telegram.replies_to(menu)
    telegram.push_callback_query(shown, "language:ru", user_id=USER)
    await telegram.wait_until(lambda: bool(telegram.calls_to("answerCallbackQuery")))
    answer = telegram.calls_to("answerCallbackQuery")[-1].params
    assert answer["text"] == replies.language_admins_only()
    photo = telegram.push_photo(solid(RED), GROUP, user_id=USER)
    assert await telegram.reply_text(photo) == RED_TEXT  # still English
    chosen = telegram.push_command("/language ru", GROUP, user_id=ADMIN)
    assert await telegram.reply_text(chosen) == "🌍 Готово! Язык этого чата: Русский."
    photo = telegram.push_photo(solid(RED), GROUP, user_id=USER, language_code="es")
    assert await telegram.reply_text(photo) == "🌭 Хот-дог! (97%)"  # the group's, not the user's
    asked = [c.params for c in telegram.calls_to("getChatMember")]
    assert {(p["chat_id"], p["user_id"]) for p in asked} == {(GROUP["id"], USER),
                                                            (GROUP["id"], ADMIN)}  # fmt: skip


async def test_a_refusal_outside_the_allow_list_is_in_the_senders_language(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(allowed_chat_ids=frozenset({42}))
    turned_away = telegram.push_text("hola", language_code="es")
    assert await telegram.reply_text(turned_away) == in_("es", replies.not_allowed)


async def test_menus_and_descriptions_are_set_for_every_language_at_start_up(
    telegram: FakeTelegram, bot: Application
) -> None:
    commands = (*replies.COMMANDS, *teach_replies.COMMANDS)
    names = [name for name, _text in commands]
    assert [c["command"] for c in telegram.commands] == names  # the default: English
    assert telegram.commands[0]["description"] == "What this bot does"
    assert set(telegram.menus) == {"", *(code for code in i18n.LANGUAGES if code != "en")}
    for code in i18n.LANGUAGES:
        key = "" if code == "en" else code
        menu = telegram.menus[key]
        assert [c["command"] for c in menu] == names
        with i18n.speaking(code):
            assert [c["description"] for c in menu] == [i18n._(text) for _n, text in commands]
        assert telegram.descriptions[key] and telegram.short_descriptions[key]
    assert telegram.menus["fr"][0]["description"] == "Ce que fait ce bot"
    assert "hot-dog" in telegram.descriptions["fr"]
    assert telegram.short_descriptions["ru"] == "Отличаю хот-доги от не-хот-догов. Пришли фото!"


async def test_a_failed_menu_call_is_logged_and_the_bot_answers_anyway(
    telegram: FakeTelegram, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.fail("setMyDescription", status=400, times=100, description="Bad Request: nope")
    await start_bot()
    assert "could not setMyDescription" in caplog.text
    assert await telegram.reply_text(telegram.push_photo(solid(RED))) == RED_TEXT


async def test_forget_in_a_private_chat_forgets_its_language_too(
    telegram: FakeTelegram, bot: Application
) -> None:
    chosen = telegram.push_command("/language uk")
    assert await telegram.reply_text(chosen) == "🌍 Готово! Мова цього чату: Українська."
    forget = telegram.push_command("/forget")
    assert await telegram.reply_text(forget) == in_("uk", lambda: replies.forgotten(0))
    assert await telegram.reply_text(telegram.push_photo(solid(RED))) == RED_TEXT


async def test_with_feedback_off_a_choice_lasts_in_memory_and_nothing_is_stored(
    telegram: FakeTelegram, start_bot: StartBot, settings: Settings
) -> None:
    await start_bot(feedback=False)
    chosen = telegram.push_command("/language fr")
    assert await telegram.reply_text(chosen) == in_("fr", lambda: replies.language_set("Français"))
    assert await telegram.reply_text(telegram.push_photo(solid(GREEN))) == "🚫 Pas hot-dog (88%)"
    assert not Path(settings.database_url.removeprefix("sqlite:///")).exists()
