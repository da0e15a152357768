"""Every sentence of teaching the bot in a chat (``/teach``, ``/done``, ``/labels``,
``/reset``) and of a taught chat's answers: bot.replies' other half, kept apart so that each
file stays readable in one sitting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nothotdog.bot.taught import (
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_PHOTOS,
    MIN_LABELS,
    MIN_PHOTOS,
    Answer,
)

COMMANDS: tuple[tuple[str, str], ...] = (
    ("teach", "Teach me your own labels: /teach pizza, then send pizza photos"),
    ("done", "Use the labels taught here from now on"),
    ("labels", "The labels taught here, with their photos"),
    ("reset", "Delete what was taught here; back to hot dog"),
)


def _photos(n: int) -> str:
    return f"{n} photo{'s' if n != 1 else ''}"


def _listing(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{label} ({_photos(n)})" for label, n in counts.items())


def help_line() -> str:
    return ("• /teach LABEL, then a few photos of it, for each of your own labels; /done and I "
            "answer with them here. /labels, /reset.")


def teach_usage() -> str:
    return ("Tell me what the next photos show: /teach pizza. Then send a few photos of it "
            f"(one by one or as albums), /teach another label and its photos, and /done once "
            f"at least {MIN_LABELS} labels have {MIN_PHOTOS} photos each.")  # fmt: skip


def bad_label() -> str:
    return (f"🤔 A label is 1 to {MAX_LABEL_CHARS} letters or digits, with single spaces, "
            "hyphens or apostrophes between words, like /teach hot dog or /teach crème brûlée.")


def too_many_labels() -> str:
    return (f"📚 This chat has {MAX_LABELS} labels already, the most I keep. /labels lists them; "
            "/reset starts again.")  # fmt: skip


def teaching(label: str, n: int) -> str:
    so_far = f" I have {_photos(n)} of it so far." if n else ""
    return (f"📸 Send me photos of {label} (one by one or as albums).{so_far} "
            "/teach another label when you switch, /done when you are ready.")


def learned(label: str, n: int, added: int = 1) -> str:
    """The short acknowledgement of one photo (or one album) taught."""
    got = "" if added == 1 else f"+{added}, "
    return f"✅ {label}: {got}{_photos(n)} so far."


def label_full(label: str) -> str:
    return (f"📦 {label} has {MAX_PHOTOS} photos, the most I keep for a label: that one was not "
            "kept. /teach another label, or /done.")


def done(counts: Mapping[str, int], left_out: Mapping[str, int]) -> str:
    out = ""
    if left_out:
        out = (f"\nLeft out until they have {MIN_PHOTOS} photos: {_listing(left_out)}.")
    return (f"🎓 Done! From now on I answer photos here with: {_listing(counts)}.{out}\n"
            "/teach adds more, /labels lists them, /reset goes back to hot dog.")


def not_ready(counts: Mapping[str, int]) -> str:
    """What ``/done`` still needs."""
    if not counts:
        return f"🤷 Nothing taught here yet. {teach_usage()}"
    enough = [label for label, n in counts.items() if n >= MIN_PHOTOS]
    short = {label: MIN_PHOTOS - n for label, n in counts.items() if n < MIN_PHOTOS}
    missing = [f"{label} needs {_photos(n)} more" for label, n in short.items()]
    if len(enough) < MIN_LABELS:
        missing.append(f"I need {MIN_LABELS} labels with {MIN_PHOTOS} photos each, and have "
                       f"{len(enough)}: /teach another label")  # fmt: skip
    return f"⏳ Not yet: {'; '.join(missing)}. So far: {_listing(counts)}."


def labels(counts: Mapping[str, int], live: bool, teaching_label: str | None) -> str:
    if not counts:
        return f"🏷 No labels taught here: I tell hot dogs from the rest. {teach_usage()}"
    state = ("I answer photos here with them." if live
             else "Not in use yet: /done puts them to work.")  # fmt: skip
    now = f" Teaching {teaching_label} now." if teaching_label else ""
    lines = [f"• {label}: {_photos(n)}" for label, n in counts.items()]
    return "\n".join(["🏷 Labels taught here:", *lines, f"{state}{now} /reset deletes them."])


def reset(deleted: int) -> str:
    if not deleted:
        return "🧹 Nothing was taught here. I tell hot dogs from the rest."
    return (f"🧹 Deleted the {_photos(deleted)} taught here (their numbers: I never keep the "
            "photos). I'm back to hot dog.")


def needs_newer_model() -> str:
    return ("🤷 Teaching needs a newer model file: this one has no 'features' output. "
            "(Its owner can add it: nothotdog-export --add-features MODEL.onnx.)")


def needs_database() -> str:
    return ("🤷 Teaching is off on this bot: it keeps what it is taught in its feedback "
            "database, and FEEDBACK is off.")


def admins_only() -> str:
    return "🔒 In groups, only the group's admins can teach me or reset what I was taught."


def not_saved() -> str:
    return "😕 I couldn't keep that right now. Please try again later."


def answer(a: Answer, show_confidence: bool = True) -> str:
    """A taught chat's answer: "pizza (93%)", or "🤔 Not sure: closest is pizza (41%)"."""
    text = f"{a.label} ({a.confidence:.0%})" if show_confidence else a.label
    return f"🏷 {text}" if a.sure else f"🤔 Not sure: closest is {text}"


def album(answers: Sequence[Answer | str]) -> str:
    """An album in a taught chat: each picture's answer (or why it has none), in order."""
    return "\n".join(f"{i}: {answer(a) if isinstance(a, Answer) else a}"
                     for i, a in enumerate(answers, 1))  # fmt: skip


def privacy() -> str:
    return ("If you teach me your own labels (/teach), I keep each photo taught as 512 numbers "
            "my model computes from it (never the photo), with its label and scrambled ids of "
            "the chat and of who sent it. /reset deletes a chat's, /forget yours.")


def forgotten(count: int) -> str:
    return f"🧹 Deleted the {_photos(count)} you taught me." if count else ""
