"""Teaching the bot in a chat (/teach, /done, /labels, /reset), through the real bot against
the fake Bot API server, with the tiny model, whose features are a photo's mean colour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from nothotdog.bot import i18n
from nothotdog.bot import teach_replies as say
from nothotdog.bot.classifier import load_model
from nothotdog.bot.examples import chats, examples
from nothotdog.bot.feedback import FeedbackStore
from nothotdog.bot.settings import Settings
from nothotdog.bot.taught import MAX_LABEL_CHARS, MIN_PHOTOS, NearestMean, clean_label
from tests.bot.conftest import StartBot
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, RED, RED_TEXT, solid
from tests.ports import free_port
from tests.tinymodel import build_tiny_model

BLUE = (40, 60, 200)
COLOURS = {"tomato": RED, "leaf": GREEN, "sky": BLUE}
ADMIN, MEMBER = 501, 502


def shade(colour: tuple[int, int, int], i: int) -> bytes:
    """A photo of ``colour``, a little lighter or darker each time."""
    return solid(tuple(min(255, max(0, c + 6 * (i % 3) - 6)) for c in colour))  # type: ignore[arg-type]


async def command(telegram: FakeTelegram, text: str, chat: dict | None = None,
                  user_id: int | None = None) -> str:  # fmt: skip
    return await telegram.reply_text(telegram.push_command(text, chat, user_id=user_id))


async def photo(telegram: FakeTelegram, data: bytes, chat: dict | None = None,
                user_id: int | None = None) -> str:  # fmt: skip
    return await telegram.reply_text(telegram.push_photo(data, chat, user_id=user_id))


async def teach(telegram: FakeTelegram, label: str, colour: tuple[int, int, int], n: int,
                chat: dict | None = None, user_id: int | None = None) -> None:  # fmt: skip
    assert await command(telegram, f"/teach {label}", chat, user_id) == say.teaching(label, 0)
    for i in range(n):
        assert await photo(telegram, shade(colour, i), chat, user_id) == say.learned(label, i + 1)


def stored(url: str) -> list[Any]:
    store = FeedbackStore(url)
    try:
        with store.engine.connect() as db:
            return list(db.execute(select(examples)).mappings())
    finally:
        store.close()


async def test_teach_three_labels_then_photos_get_them(
    telegram: FakeTelegram, bot: Any, settings: Settings
) -> None:
    for label, colour in COLOURS.items():
        await teach(telegram, label, colour, MIN_PHOTOS)
    counts = dict.fromkeys(COLOURS, MIN_PHOTOS)
    assert await command(telegram, "/done") == say.done(counts, {})
    for label, colour in COLOURS.items():
        assert (await photo(telegram, solid(colour))).startswith(f"🏷 {label} (")
    far = await photo(telegram, solid((0, 0, 0)))  # no colour at all: like none of them
    assert far.startswith("🤔 Not sure: closest is ")
    assert await command(telegram, "/labels") == say.labels(counts, True, None)
    rows = stored(settings.database_url)
    assert len(rows) == 9 and {len(r["features"]) for r in rows} == {3 * 4}  # 3 float32
    assert all(str(1001) not in r["chat_hash"] and len(r["user_hash"]) == 64 for r in rows)
    assert await command(telegram, "/reset") == say.reset(9)
    assert await photo(telegram, solid(RED)) == RED_TEXT  # hot dog again
    assert stored(settings.database_url) == []
    assert await command(telegram, "/labels") == say.labels({}, False, None)


async def test_albums_are_taught_and_answered_in_one_message(telegram: FakeTelegram, bot: Any
                                                             ) -> None:  # fmt: skip
    for label, colour in (("tomato", RED), ("sky", BLUE)):
        assert await command(telegram, f"/teach {label}") == say.teaching(label, 0)
        album = telegram.push_album([shade(colour, i) for i in range(4)])
        (ack,) = await telegram.replies_to(album[0])
        assert ack["text"] == say.learned(label, 4, added=4)
    assert (await command(telegram, "/done")).startswith("🎓 Done!")
    album = telegram.push_album([solid(BLUE), solid(RED)])
    (answer,) = await telegram.replies_to(album[0])
    assert answer["text"].startswith("1: 🏷 sky (") and "\n2: 🏷 tomato (" in answer["text"]


async def test_done_says_what_is_missing(telegram: FakeTelegram, bot: Any) -> None:
    assert await command(telegram, "/done") == say.not_ready({})  # before any /teach
    await teach(telegram, "tomato", RED, MIN_PHOTOS)
    assert await command(telegram, "/done") == say.not_ready({"tomato": 3})  # one label
    assert "2 labels" in say.not_ready({"tomato": 3})
    await teach(telegram, "leaf", GREEN, MIN_PHOTOS - 1)
    text = await command(telegram, "/done")
    assert text == say.not_ready({"tomato": 3, "leaf": 2}) and "leaf needs 1 photo more" in text
    assert await photo(telegram, shade(GREEN, 5)) == say.learned("leaf", 3)
    await teach(telegram, "typo", BLUE, 1)  # too few: left out, named
    assert await command(telegram, "/done") == say.done({"tomato": 3, "leaf": 3}, {"typo": 1})


async def test_a_photo_before_any_teach_is_judged_as_hot_dog(telegram: FakeTelegram, bot: Any
                                                             ) -> None:  # fmt: skip
    assert await photo(telegram, solid(RED)) == RED_TEXT
    await teach(telegram, "leaf", GREEN, 1)
    assert await command(telegram, "/labels") == say.labels({"leaf": 1}, False, "leaf")


async def test_bad_labels_and_limits_get_clear_answers(telegram: FakeTelegram, bot: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert await command(telegram, "/teach") == say.teach_usage()
    for bad in ("🌭", "a" * (MAX_LABEL_CHARS + 1), "hot__dog", "-x", "<b>"):
        assert await command(telegram, f"/teach {bad}") == say.bad_label()
    assert await command(telegram, "/teach  Crème   Brûlée ") == say.teaching("crème brûlée", 0)
    assert await photo(telegram, solid(RED)) == say.learned("crème brûlée", 1)
    monkeypatch.setattr("nothotdog.bot.teach.MAX_LABELS", 1)
    assert await command(telegram, "/teach other") == say.too_many_labels()
    assert await command(telegram, "/teach crème brûlée") == say.teaching("crème brûlée", 1)
    monkeypatch.setattr("nothotdog.bot.teach.MAX_PHOTOS", 1)
    assert await photo(telegram, solid(RED)) == say.label_full("crème brûlée")


async def test_in_groups_only_admins_teach_and_others_photos_stay_theirs(
    telegram: FakeTelegram, bot: Any
) -> None:
    group = telegram.group_chat()
    telegram.chat_admins[group["id"]] = {ADMIN}
    for text in ("/teach tomato", "/done", "/reset"):
        assert await command(telegram, text, group, MEMBER) == say.admins_only()
    await teach(telegram, "tomato", RED, MIN_PHOTOS, group, ADMIN)
    # While the admin teaches, a member's photo is still judged, not taken as an example.
    assert await photo(telegram, solid(RED), group, MEMBER) == RED_TEXT
    await teach(telegram, "sky", BLUE, MIN_PHOTOS, group, ADMIN)
    assert (await command(telegram, "/done", group, ADMIN)).startswith("🎓 Done!")
    assert (await photo(telegram, solid(RED), group, MEMBER)).startswith("🏷 tomato (")
    assert (await command(telegram, "/labels", group, MEMBER)).startswith("🏷 Labels")
    # The private chat of the same person knows nothing of the group's labels.
    assert await photo(telegram, solid(RED), None, ADMIN) == RED_TEXT


async def test_a_model_without_features_says_teaching_needs_a_newer_one(
    telegram: FakeTelegram, start_bot: StartBot, tmp_path: Path
) -> None:
    older = load_model(build_tiny_model(tmp_path / "older.onnx", features=False), onnx_threads=1)
    await start_bot(model=older)
    assert await command(telegram, "/teach tomato") == say.needs_newer_model()
    assert await command(telegram, "/labels") == say.needs_newer_model()
    assert await photo(telegram, solid(RED)) == RED_TEXT
    help_text = await command(telegram, "/help")
    assert "/teach" not in help_text


async def test_without_a_database_teaching_is_off(telegram: FakeTelegram, start_bot: StartBot
                                                  ) -> None:  # fmt: skip
    await start_bot(feedback=False)
    assert await command(telegram, "/teach tomato") == say.needs_database()
    assert await command(telegram, "/labels") == say.needs_database()


async def test_privacy_and_forget_cover_what_was_taught(
    telegram: FakeTelegram, bot: Any, settings: Settings
) -> None:
    assert say.privacy() in await command(telegram, "/privacy")
    assert "/teach" in await command(telegram, "/help")
    await teach(telegram, "tomato", RED, 2)
    assert await command(telegram, "/forget") == say.forgotten(2)
    assert stored(settings.database_url) == []
    store = FeedbackStore(settings.database_url)
    with store.engine.connect() as db:  # and the chat is no longer being taught
        assert [row.teaching for row in db.execute(select(chats))] == [None]
    store.close()
    assert await photo(telegram, solid(RED)) == RED_TEXT


async def test_teaching_speaks_the_senders_language(telegram: FakeTelegram, bot: Any) -> None:
    with i18n.speaking("de"):
        expected = say.teaching("tomato", 0), say.learned("tomato", 1), say.privacy()
    assert expected[0] != say.teaching("tomato", 0)  # German, not the English text
    de = {"language_code": "de"}
    assert await telegram.reply_text(telegram.push_command("/teach tomato", **de)) == expected[0]
    assert await telegram.reply_text(telegram.push_photo(solid(RED), **de)) == expected[1]
    assert expected[2] in await telegram.reply_text(telegram.push_command("/privacy", **de))


def test_labels_are_cleaned_and_the_nearest_mean_answers() -> None:
    assert clean_label(" Hot  Dog ") == "hot dog" and clean_label("o'brien-2") == "o'brien-2"
    assert clean_label("") is None and clean_label("a\nb") == "a b"
    classifier = NearestMean({"a": np.array([[1.0, 0, 0], [0.9, 0.1, 0]]),
                              "b": np.array([[0, 0, 1.0]] * 3)})  # fmt: skip
    answer = classifier.classify(np.array([1.0, 0.05, 0]))
    assert answer.label == "a" and answer.sure and answer.confidence > 0.99
    assert not classifier.classify(np.zeros(3)).sure
    with pytest.raises(ValueError):
        NearestMean({"a": np.ones((3, 3))})


async def test_with_the_database_down_photos_are_judged_and_teaching_apologises(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    down = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    await start_bot(database_url=down)
    assert await photo(telegram, solid(RED)) == RED_TEXT
    assert await command(telegram, "/teach tomato") == say.not_saved()
    assert await photo(telegram, solid(RED)) == RED_TEXT  # the lookup paused: no wait at all
