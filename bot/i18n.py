"""The languages the bot speaks: gettext catalogs, and which one the current update is answered in.

The catalogs are ``bot/locales/<code>/LC_MESSAGES/messages.po``, written by translators and
kept in step with the code by Babel (docs/languages.md). They are compiled in memory when this
module is imported, at start-up (Babel's ``read_po`` and ``write_mo`` into
``gettext.GNUTranslations``): no binary ``.mo`` file in the repository and no build step
before ``pip install -e .``, the Docker image or the tests, and the ``.po`` a translator edits
is exactly what the bot reads. Compiling them takes milliseconds; a broken one stops the start.

The language is a context variable: PTB handles each update in its own asyncio task, and
``bot.languages`` sets it once, before any handler, for that update; every sentence the update
sends reads it through ``_`` and ``ngettext``. Code outside an update (the tests, the command
line) speaks English, the language of the msgids.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ENGLISH = "en"  # the msgids' language: needs no catalog, and is everyone's fallback
LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"


def _compile(po: Path) -> gettext.GNUTranslations:
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name)
    mo = io.BytesIO()
    write_mo(mo, catalog)  # fuzzy entries are left out: a guess is no translation
    mo.seek(0)
    return gettext.GNUTranslations(mo)


CATALOGS: dict[str, gettext.NullTranslations] = {
    ENGLISH: gettext.NullTranslations(),
    **{po.parent.parent.name: _compile(po)
       for po in sorted(LOCALES.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))},
}  # fmt: skip
LANGUAGES: tuple[str, ...] = tuple(sorted(CATALOGS))

_current: ContextVar[str] = ContextVar("language", default=ENGLISH)


def use(language: str) -> None:
    """Answer the rest of this update (this asyncio task) in ``language``."""
    _current.set(language if language in CATALOGS else ENGLISH)


def current() -> str:
    return _current.get()


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """``language`` inside the block only (start-up renders the menus in each language)."""
    token = _current.set(language if language in CATALOGS else ENGLISH)
    try:
        yield
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """``message`` in the current language (itself where the catalog lacks it)."""
    return CATALOGS[_current.get()].gettext(message) if message else message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the current language's plural rules."""
    return CATALOGS[_current.get()].ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks ``message`` for the catalogs where it is defined; ``_`` translates it where it
    is shown."""
    return message


def primary(language_code: str | None) -> str | None:
    """The primary subtag of an IETF language tag, as Telegram sends it: "pt-br" -> "pt"."""
    if not language_code:
        return None
    return language_code.replace("_", "-").split("-", 1)[0].strip().lower() or None


def pick(chosen: str | None, language_code: str | None) -> str:
    """The chat's choice, else the sender's Telegram language (its primary subtag), else
    English: the first of them the bot speaks."""
    for code in (chosen, primary(language_code)):
        if code in CATALOGS:
            return code
    return ENGLISH


def name(language: str) -> str:
    """A language's name in itself, as a button shows it: "Deutsch", "Español"."""
    native = Locale.parse(language).get_display_name(language) or language
    return native[:1].upper() + native[1:]
