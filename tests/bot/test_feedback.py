""""Was I right?": the buttons under a verdict, the votes in a real database, /forget, and the
operator's export, through the real bot against the fake Bot API server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from nothotdog.bot import replies, teach_replies
from nothotdog.bot.app import build_application
from nothotdog.bot.cli import main as cli_main
from nothotdog.bot.feedback import FeedbackStore, votes
from nothotdog.bot.settings import Settings
from nothotdog.contract.runtime import OnnxModel
from tests.bot.conftest import StartBot
from tests.bot.harness import bot_process, bot_process_env, running, until
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, RED, RED_TEXT, solid
from tests.ports import free_port

USER, OTHER = 1001, 2002


def rows(url: str) -> list[Any]:
    store = FeedbackStore(url)
    try:
        store.open()
        with store.engine.connect() as db:
            return list(db.execute(select(votes)).mappings())
    finally:
        store.close()


def buttons(telegram: FakeTelegram, message: dict[str, Any]) -> list[str]:
    """The buttons under a message the bot sent, as they are now (edits included)."""
    now = telegram.messages[(message["chat"]["id"], message["message_id"])]
    markup = now.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def press(telegram: FakeTelegram, verdict: dict[str, Any], data: str,
                user_id: int = USER) -> str:  # fmt: skip
    """Press a button under ``verdict``; the text the bot answered the press with."""
    before = len(telegram.calls_to("answerCallbackQuery"))
    telegram.push_callback_query(verdict, data, user_id=user_id)
    await telegram.wait_until(lambda: len(telegram.calls_to("answerCallbackQuery")) > before)
    return telegram.calls_to("answerCallbackQuery")[-1].params.get("text", "")


async def verdict_for(telegram: FakeTelegram, color: tuple[int, int, int] = RED) -> dict:
    photo = telegram.push_photo(solid(color))
    (reply,) = await telegram.replies_to(photo, 1)
    return reply


async def test_a_vote_is_kept_shown_and_changed_never_doubled(
    telegram: FakeTelegram, start_bot: StartBot, settings: Settings
) -> None:
    await start_bot()
    verdict = await verdict_for(telegram)
    assert verdict["text"] == RED_TEXT
    assert buttons(telegram, verdict) == list(replies.vote_buttons())
    assert await press(telegram, verdict, "vote:wrong") == replies.vote_thanks()
    await until(lambda: buttons(telegram, verdict) == list(replies.vote_buttons((0, 1))))
    (row,) = rows(settings.database_url)
    assert (row["right"], row["verdict"], row["label"]) == (False, "hot_dog", "not_hot_dog")
    assert row["p_positive"] > 0.9 and row["chat_type"] == "private"
    assert str(USER) not in row["user_hash"] and len(row["user_hash"]) == 64
    assert await press(telegram, verdict, "vote:right") == replies.vote_thanks()  # changed
    await until(lambda: buttons(telegram, verdict) == list(replies.vote_buttons((1, 0))))
    assert await press(telegram, verdict, "vote:right") == replies.vote_thanks()  # again
    assert await press(telegram, verdict, "vote:right", user_id=OTHER) == replies.vote_thanks()
    await until(lambda: buttons(telegram, verdict) == list(replies.vote_buttons((2, 0))))
    assert sorted(r["right"] for r in rows(settings.database_url)) == [True, True]


async def test_a_press_on_an_old_verdict_after_a_restart_judges_its_photo_again(
    telegram: FakeTelegram, settings: Settings, tiny_model: OnnxModel
) -> None:
    async with running(build_application(settings, model=tiny_model)):
        verdict = await verdict_for(telegram)
    async with running(build_application(settings, model=tiny_model)):
        assert await press(telegram, verdict, "vote:right") == replies.vote_thanks()
    (row,) = rows(settings.database_url)
    assert (row["right"], row["verdict"], row["label"]) == (True, "hot_dog", "hot_dog")


async def test_forget_deletes_that_users_votes_and_says_how_many(
    telegram: FakeTelegram, start_bot: StartBot, settings: Settings
) -> None:
    await start_bot()
    first, second = await verdict_for(telegram), await verdict_for(telegram, GREEN)
    await press(telegram, first, "vote:right")
    await press(telegram, second, "vote:wrong")
    await press(telegram, first, "vote:wrong", user_id=OTHER)
    forget = telegram.push_command("/forget", FakeTelegram.private_chat(USER))
    assert await telegram.reply_text(forget) == replies.forgotten(2)
    assert [r["right"] for r in rows(settings.database_url)] == [False]  # OTHER's is kept
    again = telegram.push_command("/forget", FakeTelegram.private_chat(USER))
    assert await telegram.reply_text(again) == replies.forgotten(0)
    privacy = telegram.push_command("/privacy")
    taught = teach_replies.privacy()  # the tiny model has features: it can be taught
    assert await telegram.reply_text(privacy) == f"{replies.privacy(True)}\n\n{taught}"


async def test_with_the_database_down_verdicts_go_out_and_votes_are_apologised_for(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    down = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    await start_bot(database_url=down)
    verdict = await verdict_for(telegram)
    assert verdict["text"] == RED_TEXT
    assert await press(telegram, verdict, "vote:wrong") == replies.vote_not_saved()
    assert await verdict_for(telegram) is not None  # and the bot carries on


async def test_feedback_off_stores_nothing_and_shows_no_buttons(
    telegram: FakeTelegram, start_bot: StartBot, settings: Settings
) -> None:
    await start_bot(feedback=False)
    verdict = await verdict_for(telegram)
    assert "reply_markup" not in verdict
    assert await press(telegram, verdict, "vote:right") == replies.unknown_button()
    privacy = telegram.push_command("/privacy")
    assert await telegram.reply_text(privacy) == replies.privacy(False)
    assert not Path(settings.database_url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize("data", ["vote:maybe", "vote:", "garbage", "x" * 64])
async def test_a_malformed_button_gets_an_answer_and_the_bot_carries_on(
    telegram: FakeTelegram, start_bot: StartBot, settings: Settings, data: str
) -> None:
    await start_bot()
    verdict = await verdict_for(telegram)
    assert await press(telegram, verdict, data) == replies.unknown_button()
    assert rows(settings.database_url) == []
    assert (await verdict_for(telegram))["text"] == RED_TEXT


async def test_the_whole_loop_through_the_bot_process_and_the_export(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Default settings but DATABASE_URL: a vote, a restart, the export, /forget, the export."""
    url = f"sqlite:///{tmp_path}/votes.sqlite3"
    env = bot_process_env(telegram, tiny_model_path, DATABASE_URL=url)

    @contextlib.asynccontextmanager
    async def bot() -> Any:
        proc = await bot_process(env, tmp_path, (tmp_path / "bot.log").open("ab"))
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), 30) == 0

    async with bot():
        verdict = await verdict_for(telegram)
        assert buttons(telegram, verdict) == list(replies.vote_buttons())
        assert await press(telegram, verdict, "vote:wrong") == replies.vote_thanks()
    async with bot():
        verdict_again = await verdict_for(telegram, GREEN)  # the restarted bot answers too

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "export"
    assert await asyncio.to_thread(cli_main, ["feedback", "export", str(out)]) == 0
    (exported,) = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert exported.parts[0] == "not_hot_dog"  # the opposite of the verdict it was voted on
    assert exported.name.startswith("feedback__")
    with Image.open(out / exported) as image:
        assert image.getpixel((0, 0))[0] > 150  # the red photo itself, not its id
    assert await asyncio.to_thread(cli_main, ["feedback", "export", str(out)]) == 0  # skips

    async with bot():
        forget = telegram.push_command("/forget", FakeTelegram.private_chat(USER))
        assert await telegram.reply_text(forget) == replies.forgotten(1)
    again = tmp_path / "export-after-forget"
    assert await asyncio.to_thread(cli_main, ["feedback", "export", str(again)]) == 0
    assert not again.exists() or not any(again.rglob("*.*"))
    assert verdict_again["text"] != RED_TEXT
