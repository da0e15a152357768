"""Every sentence of teaching the bot in a chat (``/teach``, ``/done``, ``/labels``,
``/reset``) and of a taught chat's answers: bot.replies' other half, kept apart so that each
file stays readable in one sitting. Through gettext like bot.replies (its docstring says how)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nothotdog.bot.i18n import N_, _, ngettext
from nothotdog.bot.taught import (
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_PHOTOS,
    MIN_LABELS,
    MIN_PHOTOS,
    Answer,
)

# Added to bot.replies' command menu; each description is translated there (bot.menus).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("teach", N_("Teach me your own labels: /teach pizza, then send pizza photos")),
    ("done", N_("Use the labels taught here from now on")),
    ("labels", N_("The labels taught here, with their photos")),
    ("reset", N_("Delete what was taught here; back to hot dog")),
)


def _listing(counts: Mapping[str, int]) -> str:
    # TRANSLATORS: one label in a list of a chat's labels, e.g. "pizza (3 photos)".
    return ", ".join(ngettext("{label} ({count} photo)", "{label} ({count} photos)", n)
                     .format(label=label, count=n) for label, n in counts.items())  # fmt: skip


def help_line() -> str:
    return _("• /teach LABEL, then a few photos of it, for each of your own labels; /done and I "
             "answer with them here. /labels, /reset.")  # fmt: skip


def teach_usage() -> str:
    return _("Tell me what the next photos show: /teach pizza. Then send a few photos of it "
             "(one by one or as albums), /teach another label and its photos, and /done once "
             "at least {min_labels} labels have {min_photos} photos each."
             ).format(min_labels=MIN_LABELS, min_photos=MIN_PHOTOS)  # fmt: skip


def bad_label() -> str:
    return _("🤔 A label is 1 to {max_chars} letters or digits, with single spaces, hyphens or "
             "apostrophes between words, like /teach hot dog or /teach crème brûlée."
             ).format(max_chars=MAX_LABEL_CHARS)  # fmt: skip


def too_many_labels() -> str:
    return _("📚 This chat has {max_labels} labels already, the most I keep. /labels lists them; "
             "/reset starts again.").format(max_labels=MAX_LABELS)  # fmt: skip


def teaching(label: str, n: int) -> str:
    if not n:
        return _("📸 Send me photos of {label} (one by one or as albums). /teach another label "
                 "when you switch, /done when you are ready.").format(label=label)  # fmt: skip
    return ngettext(
        "📸 Send me photos of {label} (one by one or as albums). I have {count} photo of it so "
        "far. /teach another label when you switch, /done when you are ready.",
        "📸 Send me photos of {label} (one by one or as albums). I have {count} photos of it so "
        "far. /teach another label when you switch, /done when you are ready.", n,
    ).format(label=label, count=n)  # fmt: skip


def learned(label: str, n: int, added: int = 1) -> str:
    """The short acknowledgement of one photo (or one album) taught."""
    if added == 1:
        return ngettext("✅ {label}: {count} photo so far.", "✅ {label}: {count} photos so far.",
                        n).format(label=label, count=n)  # fmt: skip
    # TRANSLATORS: an album taught: {added} photos more, {count} in all.
    return ngettext("✅ {label}: +{added}, {count} photo so far.",
                    "✅ {label}: +{added}, {count} photos so far.",
                    n).format(label=label, added=added, count=n)  # fmt: skip


def label_full(label: str) -> str:
    return _("📦 {label} has {max_photos} photos, the most I keep for a label: that one was not "
             "kept. /teach another label, or /done.").format(label=label, max_photos=MAX_PHOTOS)


def done(counts: Mapping[str, int], left_out: Mapping[str, int]) -> str:
    lines = [_("🎓 Done! From now on I answer photos here with: {labels}.").format(
        labels=_listing(counts))]
    if left_out:
        lines.append(_("Left out until they have {min_photos} photos: {labels}.").format(
            min_photos=MIN_PHOTOS, labels=_listing(left_out)))
    lines.append(_("/teach adds more, /labels lists them, /reset goes back to hot dog."))
    return "\n".join(lines)


def not_ready(counts: Mapping[str, int]) -> str:
    """What ``/done`` still needs."""
    if not counts:
        return _("🤷 Nothing taught here yet.") + " " + teach_usage()
    enough = [label for label, n in counts.items() if n >= MIN_PHOTOS]
    short = {label: MIN_PHOTOS - n for label, n in counts.items() if n < MIN_PHOTOS}
    missing = [ngettext("{label} needs {count} photo more", "{label} needs {count} photos more",
                        n).format(label=label, count=n) for label, n in short.items()]
    if len(enough) < MIN_LABELS:
        missing.append(_("I need {min_labels} labels with {min_photos} photos each, and have "
                         "{count}: /teach another label").format(
            min_labels=MIN_LABELS, min_photos=MIN_PHOTOS, count=len(enough)))  # fmt: skip
    # TRANSLATORS: {missing} is what each label still needs, separated by semicolons.
    return _("⏳ Not yet: {missing}. So far: {labels}.").format(missing="; ".join(missing),
                                                                labels=_listing(counts))


def labels(counts: Mapping[str, int], live: bool, teaching_label: str | None) -> str:
    if not counts:
        return (_("🏷 No labels taught here: I tell hot dogs from the rest.") + " "
                + teach_usage())  # fmt: skip
    state = [_("I answer photos here with them.") if live
             else _("Not in use yet: /done puts them to work.")]  # fmt: skip
    if teaching_label:
        state.append(_("Teaching {label} now.").format(label=teaching_label))
    state.append(_("/reset deletes them."))
    lines = [ngettext("• {label}: {count} photo", "• {label}: {count} photos", n).format(
        label=label, count=n) for label, n in counts.items()]
    return "\n".join([_("🏷 Labels taught here:"), *lines, " ".join(state)])


def reset(deleted: int) -> str:
    if not deleted:
        return _("🧹 Nothing was taught here. I tell hot dogs from the rest.")
    return ngettext(
        "🧹 Deleted the {count} photo taught here (their numbers: I never keep the photos). "
        "I'm back to hot dog.",
        "🧹 Deleted the {count} photos taught here (their numbers: I never keep the photos). "
        "I'm back to hot dog.", deleted,
    ).format(count=deleted)  # fmt: skip


def needs_newer_model() -> str:
    return _("🤷 Teaching needs a newer model file: this one has no 'features' output. (Its "
             "owner can add it: nothotdog-export --add-features MODEL.onnx.)")  # fmt: skip


def needs_database() -> str:
    return _("🤷 Teaching is off on this bot: it keeps what it is taught in its feedback "
             "database, and FEEDBACK is off.")  # fmt: skip


def admins_only() -> str:
    return _("🔒 In groups, only the group's admins can teach me or reset what I was taught.")


def not_saved() -> str:
    return _("😕 I couldn't keep that right now. Please try again later.")


def answer(a: Answer, show_confidence: bool = True) -> str:
    """A taught chat's answer: "pizza (93%)", or "🤔 Not sure: closest is pizza (41%)"."""
    text = f"{a.label} ({a.confidence:.0%})" if show_confidence else a.label
    if a.sure:
        return f"🏷 {text}"  # the chat's own words: nothing to translate
    return _("🤔 Not sure: closest is {answer}").format(answer=text)


def album(answers: Sequence[Answer | str]) -> str:
    """An album in a taught chat: each picture's answer (or why it has none), in order."""
    return "\n".join(f"{i}: {answer(a) if isinstance(a, Answer) else a}"
                     for i, a in enumerate(answers, 1))  # fmt: skip


def privacy() -> str:
    return _("If you teach me your own labels (/teach), I keep each photo taught as 512 numbers "
             "my model computes from it (never the photo), with its label and scrambled ids of "
             "the chat and of who sent it. /reset deletes a chat's, /forget yours.")


def forgotten(count: int) -> str:
    if not count:
        return ""
    return ngettext("🧹 Deleted the {count} photo you taught me.",
                    "🧹 Deleted the {count} photos you taught me.", count).format(count=count)
