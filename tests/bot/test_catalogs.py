"""The translations are complete: every message the code has (extracted with Babel, as
``pybabel extract`` does) is translated in every catalog, none is fuzzy, stale or missing its
placeholders, and every reply renders in every language."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from nothotdog.bot import i18n, model_texts, replies
from nothotdog.bot import teach_replies as teach
from nothotdog.bot.classifier import NoWhy, Verdict
from nothotdog.bot.outcomes import Judged, Refusal, Refused
from nothotdog.bot.taught import Answer
from nothotdog.contract import ModelSpec
from nothotdog.contract.spec import HOTDOG_DISPLAY

BOT = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
LANGUAGES = [code for code in i18n.LANGUAGES if code != i18n.ENGLISH]
MessageId = str | tuple[str, ...]


def extracted() -> set[MessageId]:
    return {msgid for _file, _line, msgid, _comments, _context in extract_from_dir(BOT)}


def catalog(language: str) -> Catalog:
    with (i18n.LOCALES / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("rb") as f:
        return read_po(f, locale=language)


def _forms(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def _problems(message: Message) -> Iterator[str]:
    """What is wrong with one entry of a catalog."""
    msgid = message.id if isinstance(message.id, str) else message.id[-1]
    if message.fuzzy:
        yield "fuzzy (a guess, left out of the bot)"
    for form in _forms(message):
        if not form:
            yield "untranslated"
        elif set(PLACEHOLDER.findall(form)) != set(PLACEHOLDER.findall(msgid)):
            yield f"placeholders {sorted(PLACEHOLDER.findall(form))} differ in {form!r}"
        elif form == msgid and not any("same" in c for c in message.user_comments):
            yield "the English text (a translator's comment saying it is the same allows it)"
        elif _opening(msgid) and _opening(form) != _opening(msgid):
            yield f"does not open with {_opening(msgid)!r}, as album answers show it"


def _opening(text: str) -> str | None:
    """The emoji or bullet a message opens with (None: it opens with a word)."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    return None if not first or any(c.isalnum() for c in first) else first


def test_at_least_six_languages_besides_english() -> None:
    assert {"es", "pt", "ru", "de", "fr"} <= set(LANGUAGES) and len(LANGUAGES) >= 6


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalog_translates_every_message_of_the_code(language: str) -> None:
    po, wanted = catalog(language), extracted()
    have = {m.id for m in po if m.id}
    assert not wanted - have, f"missing in {language} (pybabel update, docs/languages.md)"
    assert not have - wanted, f"no longer in the code, still in {language}"
    problems = [f"{m.id!r}: {p}" for m in po if m.id for p in _problems(m)]
    assert not problems, "\n".join(problems)
    assert len(po.plural_forms) and po.num_plurals >= 1


def test_the_hotdog_words_are_in_the_catalogs() -> None:
    assert set(model_texts.HOTDOG_WORDS) == set(HOTDOG_DISPLAY.values())


class Recording:
    """A catalog that notes every msgid asked of it."""

    def __init__(self, inner: object, seen: set[MessageId]) -> None:
        self.inner, self.seen = inner, seen

    def gettext(self, message: str) -> str:
        self.seen.add(message)
        return self.inner.gettext(message)  # type: ignore[attr-defined]

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        self.seen.add((singular, plural))
        return self.inner.ngettext(singular, plural, n)  # type: ignore[attr-defined]


SPECS = {
    "hotdog": ModelSpec(test_metrics={"accuracy": 0.95, "n": 400,
                                      "per_source": {"web": {"accuracy": 0.9, "n": 100}}},
                        metrics={"accuracy": 0.96, "per_source": {"web": {"accuracy": 0.91}}}),
    "cat": ModelSpec(labels=("cat", "other"), positive_label="cat"),
    "colours": ModelSpec(labels=("blue", "green", "red"), positive_label="red",
                         metrics={"accuracy": 0.8, "per_source": {"web": {"accuracy": 0.7}}}),
}  # fmt: skip


def every_reply(spec: ModelSpec) -> list[Callable[[], object]]:
    """Each sentence the bot can send, with this model."""
    close = Verdict(label=spec.labels[0], probability=0.5, is_positive=True, p_positive=0.5,
                    probabilities=(0.5, 0.4, 0.1)[: len(spec.labels)])  # fmt: skip
    judged = Judged(close, from_preview=True)
    refusals = [Refused(Refusal.UNREADABLE, "truncated"), Refused(Refusal.TOO_LARGE),
                Refused(Refusal.TOO_LARGE, size=30_000_000), Refused(Refusal.BUSY)]  # fmt: skip
    return [
        lambda: replies.start(spec), lambda: replies.help_text(10, spec),
        lambda: replies.about(spec), lambda: replies.verdict(close, spec),
        lambda: replies.album([(close, ""), (None, replies.busy())], True, spec),
        lambda: replies.outcome(judged, spec, 10), lambda: replies.outcome(None, spec, 10),
        *(lambda r=r: replies.outcome(r, spec, 10) for r in refusals),
        lambda: replies.vote_buttons(), lambda: replies.vote_buttons((1, 2)),
        replies.vote_thanks, replies.vote_not_saved, replies.unknown_button,
        lambda: replies.privacy(True), lambda: replies.privacy(False),
        lambda: replies.forgotten(0), lambda: replies.forgotten(1), lambda: replies.forgotten(5),
        lambda: replies.no_why(NoWhy.NO_HEATMAP), lambda: replies.no_why(NoWhy.NOT_TWO_CLASS),
        replies.why_usage, replies.why_button, replies.photo_gone,
        lambda: replies.why_caption(close, spec), lambda: replies.hotdog_usage("hotdog"),
        lambda: replies.hotdog_usage("classify"), replies.not_an_image, replies.no_preview,
        replies.not_allowed, replies.not_allowed_group,
        lambda: replies.hotdog_usage_private(spec), lambda: replies.language_menu("Deutsch"),
        lambda: replies.language_set("Deutsch"),
        lambda: replies.language_unknown("xx", i18n.LANGUAGES), replies.language_admins_only,
        lambda: model_texts.description(spec), lambda: model_texts.short_description(spec),
        lambda: [i18n._(text) for _name, text in replies.COMMANDS],
        lambda: model_texts.about(ModelSpec()),
        *every_teaching_reply(),
    ]  # fmt: skip


def every_teaching_reply() -> list[Callable[[], object]]:
    """Each sentence of teaching the bot in a chat (bot.teach_replies)."""
    unsure = Answer("pizza", 0.41, 0.2, sure=False)
    return [
        lambda: [i18n._(text) for _name, text in teach.COMMANDS], teach.help_line,
        teach.teach_usage, teach.bad_label, teach.too_many_labels,
        lambda: teach.teaching("pizza", 0), lambda: teach.teaching("pizza", 2),
        lambda: teach.learned("pizza", 1), lambda: teach.learned("pizza", 5, added=4),
        lambda: teach.label_full("pizza"),
        lambda: teach.done({"pizza": 3, "sushi": 21}, {"taco": 1}),
        lambda: teach.not_ready({}), lambda: teach.not_ready({"pizza": 3, "taco": 2}),
        lambda: teach.labels({}, False, None), lambda: teach.labels({"pizza": 3}, True, None),
        lambda: teach.labels({"pizza": 3, "taco": 1}, False, "taco"),
        lambda: teach.reset(0), lambda: teach.reset(1), lambda: teach.reset(22),
        teach.needs_newer_model, teach.needs_database, teach.admins_only, teach.not_saved,
        lambda: teach.answer(unsure), lambda: teach.album([unsure, replies.busy()]),
        teach.privacy, lambda: teach.forgotten(1), lambda: teach.forgotten(7),
    ]  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_reply_renders_in_every_language(
    language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each reply comes out whole in this language, and in other words than English (but for
    a text its translator marked the same); every message of the code was asked for, so none
    is left out of this list."""
    seen: set[MessageId] = set()
    monkeypatch.setitem(i18n.CATALOGS, language, Recording(i18n.CATALOGS[language], seen))
    same = [m.id for m in catalog(language) if m.id and m.string == m.id]
    for kind, spec in SPECS.items():
        for render in every_reply(spec):
            english = render()  # outside an update: English
            with i18n.speaking(language):
                text = str(render())
            assert text and not PLACEHOLDER.search(text), (kind, text)
            if kind == "hotdog":
                assert text != str(english) or any(s in text for s in same), text
    left_out = extracted() - seen
    assert not left_out, f"every_reply renders none of these: {sorted(map(str, left_out))}"
