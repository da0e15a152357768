"""Every sentence the bot says, in one place, as plain functions of plain values.

Each goes through gettext (``bot.i18n``): ``_("... {name}").format(name=...)`` with named
placeholders, so a translation can put them in its own order, and ``ngettext`` for counts.
Whole sentences are msgids, never pieces glued together, so that each language can phrase
them its own way. The language is the current update's (``bot.i18n.use``); English outside one.
"""

from __future__ import annotations

from collections.abc import Sequence

from nothotdog.bot.classifier import NoWhy, Verdict
from nothotdog.bot.i18n import N_, _, ngettext
from nothotdog.bot.model_texts import about as about
from nothotdog.bot.model_texts import find_accuracy as find_accuracy
from nothotdog.bot.model_texts import is_hotdog, label_text, told_apart, words
from nothotdog.bot.outcomes import Outcome, Refusal, Refused
from nothotdog.bot.settings import DEFAULT_MAX_FILE_MB
from nothotdog.contract import ModelSpec

# The command menu: each description is translated where the menu is set (bot.menus).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("What this bot does")),
    ("help", N_("How to use it, in private chats and groups")),
    ("about", N_("The model: name, version, labels, accuracy")),
    ("hotdog", N_("Reply to a photo with this to classify it")),
    ("classify", N_("The same as /hotdog, for any model")),
    ("why", N_("Reply to a photo with this to see where I saw the hot dog")),
    ("privacy", N_("What I keep when you tell me I was right or wrong")),
    ("forget", N_("Delete everything I kept from you")),
    ("language", N_("Choose the language I answer in")),
)


# A multi-class answer names the runner-up too when it is at most this far behind the top.
CLOSE_CALL = 0.15


def verdict(v: Verdict, spec: ModelSpec, show_confidence: bool = True) -> str:
    """E.g. "🌭 Hotdog! (97%)"; with more classes, "Red (55%), or Green (42%)" when close."""
    text = _with_confidence(label_text(spec, v.label), v.probability, show_confidence)
    second = runner_up(v, spec)
    if second is None:
        return text
    other = _with_confidence(label_text(spec, second[0]), second[1], show_confidence)
    # TRANSLATORS: a close call between a model's two most likely labels, e.g. "Red (55%)".
    return _("{first}, or {second}").format(first=text, second=other)


def _with_confidence(text: str, probability: float, show_confidence: bool) -> str:
    return f"{text} ({probability:.0%})" if show_confidence else text


def runner_up(v: Verdict, spec: ModelSpec) -> tuple[str, float] | None:
    """The second label of a model with more than two classes, when it is a close call."""
    if spec.two_class or len(v.probabilities) != len(spec.labels):
        return None
    ranked = sorted(zip(v.probabilities, spec.labels, strict=True), reverse=True)
    p, label = ranked[1]
    return (label, p) if v.probability - p <= CLOSE_CALL else None


def verdict_mark(v: Verdict | None, failure: str, show_confidence: bool = True,
                 spec: ModelSpec | None = None) -> str:  # fmt: skip
    """One picture in an album's answer: 🌭 or 🚫 (with the confidence), or the emoji that
    opens the sentence saying why it has no verdict. A label whose text opens with no emoji
    is shown by its whole text ("Red 55%")."""
    if v is None:
        return failure.split(maxsplit=1)[0]
    mark = _mark(label_text(spec or ModelSpec(), v.label))
    return f"{mark} {v.probability:.0%}" if show_confidence else mark


def _mark(text: str) -> str:
    """A display text's opening emoji ("🌭 Hotdog!" -> "🌭"), or the whole text if it has none."""
    first = text.split(maxsplit=1)[0] if text.strip() else text
    return text if any(c.isalnum() for c in first) else first


def album(answers: Sequence[tuple[Verdict | None, str]], show_confidence: bool = True,
          spec: ModelSpec | None = None) -> str:  # fmt: skip
    """An album's one answer: each picture's verdict in order, e.g. "1 🌭  2 🚫  3 😕", then a
    line for each picture that has none, saying why."""
    marks = "  ".join(
        f"{i} {verdict_mark(v, text, show_confidence, spec)}"
        for i, (v, text) in enumerate(answers, 1)
    )
    notes = [f"{i}: {text}" for i, (v, text) in enumerate(answers, 1) if v is None]
    return "\n".join([marks, *notes])


def start(spec: ModelSpec | None = None) -> str:
    if spec is None or is_hotdog(spec):
        return _(
            "🌭 Hi! I tell hotdogs from not-hotdogs.\n\n"
            "Send me a photo (or an image file) and I'll reply with my verdict.\n"
            "In a group, reply to any photo with /hotdog.\n"
            "Reply to a photo with /why to see where I looked.\n\n"
            "/help - how I work in private chats and groups\n"
            "/about - the model behind me"
        )
    text = _(
        "👋 Hi! I look at photos and tell: {told_apart}.\n\n"
        "Send me a photo (or an image file) and I'll reply with my answer.\n"
        "In a group, reply to any photo with /classify."
    ).format(told_apart=told_apart(spec))
    if spec.two_class:
        text += "\n" + _("Reply to a photo with /why to see where I looked.")
    return text + "\n\n" + _(
        "/help - how I work in private chats and groups\n"
        "/about - the model behind me and its labels"
    )


def help_text(max_file_mb: int = DEFAULT_MAX_FILE_MB, spec: ModelSpec | None = None) -> str:
    if spec is None or is_hotdog(spec):
        answer, command = _("🌭 Hotdog! or 🚫 Not hotdog"), "/hotdog"
        why = [_("• /why as a reply to a photo: the photo back, brightest where it looked most "
                 "like a hot dog to me.")]  # fmt: skip
    else:
        answer, command = told_apart(spec), "/classify"
        positive = words(label_text(spec, spec.positive_label)).lower()
        why = [_("• /why as a reply to a photo: the photo back, brightest where it looked most "
                 "like {label} to me.").format(label=positive)]  # fmt: skip
        if not spec.two_class:
            why = []
    spec = spec or ModelSpec()
    marks = "  ".join(f"{i} {_mark(label_text(spec, label))}"
                      for i, label in enumerate(spec.labels[:2], 1))  # fmt: skip
    return "\n".join([
        _("How to use me:"),
        _("• Private chat: send a photo or an image file (JPEG, PNG, WebP, GIF, BMP, TIFF) and I "
          "answer {answer}. An album gets one answer: {marks} ...").format(answer=answer,
                                                                            marks=marks),
        _("• Groups: if I can read the group's messages (my privacy mode is off, or I'm an "
          "admin) I answer every photo. Otherwise reply to a photo with {command} and I'll "
          "answer that one.").format(command=command),
        *why,
        _("• Files up to {max_mb} MB (bigger ones: I judge Telegram's preview); I look at the "
          "whole picture, nothing is stored.").format(max_mb=max_file_mb),
        "",
        _("/about - which model answers, and how accurate it is\n"
          "/privacy - what I keep when you vote 👍 or 👎; /forget deletes it"),
    ])  # fmt: skip


def vote_buttons(votes: tuple[int, int] | None = None) -> tuple[str, str]:
    """The two feedback buttons, with the votes so far once there are any."""
    right, wrong = _("👍 Right"), _("👎 Wrong")
    if votes is None:
        return right, wrong
    return f"{right} · {votes[0]}", f"{wrong} · {votes[1]}"


def vote_thanks() -> str:
    return _("Thanks, noted! (/privacy says what I keep)")


def vote_not_saved() -> str:
    return _("😕 I couldn't save that right now. Please try again later.")


def unknown_button() -> str:
    return _("🤷 That button isn't one of mine (any more).")


def privacy(feedback: bool) -> str:
    if not feedback:
        return _("🔒 I look at your photos in memory and forget them: nothing about you or your "
                 "photos is stored.")  # fmt: skip
    return _(
        "🔒 I look at your photos in memory and forget them. Only when you press 👍 or 👎 under "
        "a verdict do I keep a note of it: the photo's Telegram file id (not the photo), the "
        "kind of chat, a scrambled (salted hash) form of your user id, which model answered, "
        "its verdict and how sure it was, your vote and the time. They help train a better "
        "model. /forget deletes all of yours."
    )


def forgotten(count: int) -> str:
    if count == 0:
        return _("🧹 I had nothing of yours to delete.")
    return ngettext("🧹 Done: deleted your {count} vote.", "🧹 Done: deleted your {count} votes.",
                    count).format(count=count)  # fmt: skip


def why_two_class_only() -> str:
    return _("🤷 /why explains two-class models only: this model's heatmap shows one label "
             "against the rest, not the label I answered. The answers still work.")  # fmt: skip


def why_usage() -> str:
    return _("Reply to a photo with /why and I'll show you where I saw the hot dog.")


def why_button() -> str:
    return _("Why?")


def cant_explain() -> str:
    return _("🤷 This model can't explain itself: it has no heatmap. The verdicts still work.")


def no_why(reason: NoWhy) -> str:
    """Why /why cannot draw its picture with this model."""
    return cant_explain() if reason == NoWhy.NO_HEATMAP else why_two_class_only()


def photo_gone() -> str:
    return _("😕 I can't find that photo any more.")


def why_caption(v: Verdict, spec: ModelSpec) -> str:
    """The verdict, P(hotdog), and how to read the colours."""
    name = spec.positive_label.replace("_", "")
    return _(
        "{verdict} · P({name}) = {p}\n"
        "Bright = what looked most like {label} to me, dark = least."
    ).format(verdict=verdict(v, spec, show_confidence=False), name=name,
             p=f"{v.p_positive:.0%}", label=spec.positive_label.replace("_", " "))  # fmt: skip


def hotdog_usage(command: str = "hotdog") -> str:
    if command == "hotdog":
        return _("Reply to a photo with /hotdog and I'll tell you if it's a hotdog.")
    return _("Reply to a photo with /{command} and I'll tell you what I see.").format(
        command=command)


def not_an_image() -> str:
    return _(
        "😕 That file isn't an image I can look at. Send a photo, or a JPEG, PNG, WebP, GIF, "
        "BMP or TIFF file."
    )


def no_preview() -> str:
    """A video, GIF or moving sticker that came without Telegram's preview picture: the bot
    judges those by the preview and never decodes video."""
    return _("🎞️ I only see a video, GIF or moving sticker through the preview picture Telegram "
             "sends with it, and this one came without one. Send a photo or a screenshot "
             "instead.")  # fmt: skip


def unreadable(reason: str) -> str:
    # TRANSLATORS: {reason} is the decoder's own words, in English.
    return _("😕 I couldn't read that image: {reason}. Try sending it as a photo.").format(
        reason=reason)


def too_large(size_bytes: int | None = None, max_file_mb: int = DEFAULT_MAX_FILE_MB) -> str:
    if size_bytes:
        return _("📦 That file is too big ({size} MB): I look at files up to {max_mb} MB. "
                 "Send it as a photo instead, Telegram will shrink it.").format(
            size=f"{size_bytes / 1_000_000:.0f}", max_mb=max_file_mb)  # fmt: skip
    return _("📦 That file is too big: I look at files up to {max_mb} MB. Send it as a photo "
             "instead, Telegram will shrink it.").format(max_mb=max_file_mb)  # fmt: skip


def from_preview(verdict_text: str, max_file_mb: int = DEFAULT_MAX_FILE_MB) -> str:
    """A verdict on Telegram's small preview of a file too big to download."""
    return _("{verdict}\n(from Telegram's preview: the file is over {max_mb} MB)").format(
        verdict=verdict_text, max_mb=max_file_mb)


def refusal(refused: Refused, max_file_mb: int = DEFAULT_MAX_FILE_MB) -> str:
    """Why a picture got no verdict."""
    if refused.reason == Refusal.UNREADABLE:
        return unreadable(refused.detail)
    if refused.reason == Refusal.TOO_LARGE:
        return too_large(refused.size, max_file_mb)
    return busy()


def outcome(
    result: Outcome | None, spec: ModelSpec, max_file_mb: int, show_confidence: bool = True
) -> str:
    """The sentence for one picture's outcome (None: judging it failed)."""
    if result is None:
        return failed()
    if isinstance(result, Refused):
        return refusal(result, max_file_mb)
    text = verdict(result.verdict, spec, show_confidence)
    return from_preview(text, max_file_mb) if result.from_preview else text


def busy() -> str:
    return _("⏳ I'm swamped with photos right now. Please send that one again in a few seconds.")


def failed() -> str:
    return _("⚠️ Sorry, something went wrong on my side. Please try again.")


def not_allowed() -> str:
    return _("🔒 Sorry, this bot is private and doesn't answer in this chat.")


def not_allowed_group() -> str:
    return _("🔒 Sorry, this bot is private, so it is leaving this group.")


def hotdog_usage_private(spec: ModelSpec | None = None) -> str:
    if spec is None or is_hotdog(spec):
        return _("Send me a photo and I'll tell you if it's a hotdog 🌭  (/help for more)")
    return _("Send me a photo and I'll tell you: {told_apart}  (/help for more)").format(
        told_apart=told_apart(spec))


def language_menu(language: str) -> str:
    """Above the language buttons; ``language`` is the current one's name."""
    return _("🌍 Which language should I answer in, in this chat? Now: {language}.").format(
        language=language)


def language_set(language: str) -> str:
    """Said in the language just chosen, ``language`` being its name in itself."""
    return _("🌍 Done! The language of this chat: {language}.").format(language=language)


def language_unknown(asked: str, codes: Sequence[str]) -> str:
    return _("🤷 I don't speak “{asked}”. Send /language and tap one, or send /language with "
             "one of: {codes}.").format(asked=asked, codes=", ".join(codes))


def language_admins_only() -> str:
    return _("🔒 In a group, only its admins can change my language.")
