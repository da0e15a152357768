"""Every sentence the bot says, in one place, as plain functions of plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nothotdog.bot.classifier import NoWhy, Verdict
from nothotdog.bot.outcomes import Outcome, Refusal, Refused
from nothotdog.bot.settings import DEFAULT_MAX_FILE_MB
from nothotdog.contract import ModelSpec

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "What this bot does"),
    ("help", "How to use it, in private chats and groups"),
    ("about", "The model: name, version, labels, accuracy"),
    ("hotdog", "Reply to a photo with this to classify it"),
    ("classify", "The same as /hotdog, for any model"),
    ("why", "Reply to a photo with this to see where I saw the hot dog"),
    ("privacy", "What I keep when you tell me I was right or wrong"),
    ("forget", "Delete everything I kept from you"),
)


# A multi-class answer names the runner-up too when it is at most this far behind the top.
CLOSE_CALL = 0.15


def is_hotdog(spec: ModelSpec) -> bool:
    """The hot-dog model: it keeps the words its users know."""
    return set(spec.labels) == {"hot_dog", "not_hot_dog"}


def verdict(v: Verdict, spec: ModelSpec, show_confidence: bool = True) -> str:
    """E.g. "🌭 Hotdog! (97%)"; with more classes, "Red (55%), or Green (42%)" when close."""
    text = _with_confidence(spec.display_text(v.label), v.probability, show_confidence)
    second = runner_up(v, spec)
    if second is not None:
        text += ", or " + _with_confidence(spec.display_text(second[0]), second[1], show_confidence)
    return text


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
    mark = _mark((spec or ModelSpec()).display_text(v.label))
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


def _told_apart(spec: ModelSpec) -> str:
    """What this model tells apart, in its own words: "Cat or not", "Blue, Green or Red"."""
    if spec.two_class:
        return f"{_words(spec.display_text(spec.positive_label))} or not"
    texts = [_words(spec.display_text(label)) for label in spec.labels]
    return ", ".join(texts[:-1]) + f" or {texts[-1]}"


def _words(text: str) -> str:
    """A display text without its emoji and exclamation: "✅ Cat!" -> "Cat"."""
    words = [w for w in text.split() if any(c.isalnum() for c in w)]
    return " ".join(words).rstrip("!") or text


def start(spec: ModelSpec | None = None) -> str:
    if spec is None or is_hotdog(spec):
        return (
            "🌭 Hi! I tell hotdogs from not-hotdogs.\n\n"
            "Send me a photo (or an image file) and I'll reply with my verdict.\n"
            "In a group, reply to any photo with /hotdog.\n"
            "Reply to a photo with /why to see where I looked.\n\n"
            "/help - how I work in private chats and groups\n"
            "/about - the model behind me"
        )
    why = "Reply to a photo with /why to see where I looked.\n" if spec.two_class else ""
    return (
        f"👋 Hi! I look at photos and tell: {_told_apart(spec)}.\n\n"
        "Send me a photo (or an image file) and I'll reply with my answer.\n"
        "In a group, reply to any photo with /classify.\n"
        f"{why}\n"
        "/help - how I work in private chats and groups\n"
        "/about - the model behind me and its labels"
    )


def help_text(max_file_mb: int = DEFAULT_MAX_FILE_MB, spec: ModelSpec | None = None) -> str:
    if spec is None or is_hotdog(spec):
        answer, command = "🌭 Hotdog! or 🚫 Not hotdog", "/hotdog"
        why = ("• /why as a reply to a photo: the photo back, brightest where it looked most like "
               "a hot dog to me.\n")  # fmt: skip
    else:
        answer, command = _told_apart(spec), "/classify"
        why = ("• /why as a reply to a photo: the photo back, brightest where it looked most like "
               f"{_words(spec.display_text(spec.positive_label)).lower()} to me.\n"
               if spec.two_class else "")  # fmt: skip
    spec = spec or ModelSpec()
    marks = "  ".join(f"{i} {_mark(spec.display_text(label))}"
                      for i, label in enumerate(spec.labels[:2], 1))  # fmt: skip
    return (
        "How to use me:\n"
        "• Private chat: send a photo or an image file (JPEG, PNG, WebP, GIF, BMP, TIFF) and I "
        f"answer {answer}. An album gets one answer: {marks} ...\n"
        "• Groups: if I can read the group's messages (my privacy mode is off, or I'm an "
        f"admin) I answer every photo. Otherwise reply to a photo with {command} and I'll "
        "answer that one.\n"
        f"{why}"
        f"• Files up to {max_file_mb} MB (bigger ones: I judge Telegram's preview); I look at "
        "the whole picture, nothing is stored.\n\n"
        "/about - which model answers, and how accurate it is\n"
        "/privacy - what I keep when you vote 👍 or 👎; /forget deletes it"
    )


def about(spec: ModelSpec) -> str:
    measured = _measured(spec)
    labels = ", ".join(spec.labels)
    if is_hotdog(spec):
        rule = (f"Labels: {labels} (hotdog = {spec.positive_label})\n"
                f"Threshold: {spec.threshold:.2f} (says hotdog when P({spec.positive_label}) ≥ "
                "it)\n")  # fmt: skip
    elif spec.two_class:
        rule = (f"Labels: {_label_list(spec)}\n"
                f"Threshold: {spec.threshold:.2f} (says {spec.positive_label} when "
                f"P({spec.positive_label}) ≥ it)\n")  # fmt: skip
    else:
        rule = f"Labels: {_label_list(spec)}\nRule: the most probable label wins\n"
    return (
        f"Model: {spec.name} (version {spec.version})\n"
        f"{rule}"
        f"Accuracy: {measured}\n"
        f"{_per_source(spec)}"
        f"Input: {spec.input_size}×{spec.input_size} RGB, whole photo resized ({spec.resize})"
    )


def _label_list(spec: ModelSpec) -> str:
    """Each label with the text the bot shows for it: "red (Red), green (Green)"."""
    return ", ".join(f"{label} ({spec.display_text(label)})" for label in spec.labels)


def _per_source(spec: ModelSpec) -> str:
    """One line per photo source: test accuracy (photos), validation beside it; empty when the
    file carries no per-source figures."""
    test, val = (m.get("per_source") for m in (spec.test_metrics, spec.metrics))
    test, val = (m if isinstance(m, Mapping) else {} for m in (test, val))
    rows, beside = (test, val) if test else (val, {})
    lines = []
    for name, figures in rows.items():
        acc, other = find_accuracy(figures), find_accuracy(beside.get(name, {}))
        if acc is not None:
            lines.append(f"  {name}: {acc:.1%} ({figures.get('n')} photos)"
                         + (f", {other:.1%}" if other is not None else ""))
    if not lines:
        return ""
    head = "By source (test, validation):" if beside else "By source:"
    return "\n".join([head, *lines]) + "\n"


def _measured(spec: ModelSpec) -> str:
    """Test accuracy of this very file first (what users get), validation beside it."""
    parts = []
    test = find_accuracy(spec.test_metrics)
    if test is not None:
        n = spec.test_metrics.get("n")
        parts.append(f"{test:.1%} on held-out test photos" + (f" ({n})" if n else ""))
    val = find_accuracy(spec.metrics)
    if val is not None:
        parts.append(f"{val:.1%} on validation")
    return ", ".join(parts) or "not recorded"


def find_accuracy(metrics: Mapping[str, object]) -> float | None:
    """Accuracy from the model's metrics, at the top level or one level down (``overall``)."""
    for key in ("accuracy", "val_accuracy", "acc"):
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    for nested in metrics.values():
        if isinstance(nested, Mapping):
            found = find_accuracy(nested)
            if found is not None:
                return found
    return None


def vote_buttons(votes: tuple[int, int] | None = None) -> tuple[str, str]:
    """The two feedback buttons, with the votes so far once there are any."""
    if votes is None:
        return "👍 Right", "👎 Wrong"
    return f"👍 Right · {votes[0]}", f"👎 Wrong · {votes[1]}"


def vote_thanks() -> str:
    return "Thanks, noted! (/privacy says what I keep)"


def vote_not_saved() -> str:
    return "😕 I couldn't save that right now. Please try again later."


def unknown_button() -> str:
    return "🤷 That button isn't one of mine (any more)."


def privacy(feedback: bool) -> str:
    if not feedback:
        return ("🔒 I look at your photos in memory and forget them: nothing about you or your "
                "photos is stored.")  # fmt: skip
    return (
        "🔒 I look at your photos in memory and forget them. Only when you press 👍 or 👎 under "
        "a verdict do I keep a note of it: the photo's Telegram file id (not the photo), the "
        "kind of chat, a scrambled (salted hash) form of your user id, which model answered, "
        "its verdict and how sure it was, your vote and the time. They help train a better "
        "model. /forget deletes all of yours."
    )


def forgotten(count: int) -> str:
    if count == 0:
        return "🧹 I had nothing of yours to delete."
    return f"🧹 Done: deleted your {count} vote{'s' if count != 1 else ''}."


def why_two_class_only() -> str:
    return ("🤷 /why explains two-class models only: this model's heatmap shows one label "
            "against the rest, not the label I answered. The answers still work.")  # fmt: skip


def why_usage() -> str:
    return "Reply to a photo with /why and I'll show you where I saw the hot dog."


def why_button() -> str:
    return "Why?"


def cant_explain() -> str:
    return "🤷 This model can't explain itself: it has no heatmap. The verdicts still work."


def no_why(reason: NoWhy) -> str:
    """Why /why cannot draw its picture with this model."""
    return cant_explain() if reason == NoWhy.NO_HEATMAP else why_two_class_only()


def photo_gone() -> str:
    return "😕 I can't find that photo any more."


def why_caption(v: Verdict, spec: ModelSpec) -> str:
    """The verdict, P(hotdog), and how to read the colours."""
    name = spec.positive_label.replace("_", "")
    return (
        f"{verdict(v, spec, show_confidence=False)} · P({name}) = {v.p_positive:.0%}\n"
        f"Bright = what looked most like {spec.positive_label.replace('_', ' ')} to me, "
        "dark = least."
    )


def hotdog_usage(command: str = "hotdog") -> str:
    if command == "hotdog":
        return "Reply to a photo with /hotdog and I'll tell you if it's a hotdog."
    return f"Reply to a photo with /{command} and I'll tell you what I see."


def not_an_image() -> str:
    return (
        "😕 That file isn't an image I can look at. Send a photo, or a JPEG, PNG, WebP, GIF, "
        "BMP or TIFF file."
    )


def unreadable(reason: str) -> str:
    return f"😕 I couldn't read that image: {reason}. Try sending it as a photo."


def too_large(size_bytes: int | None = None, max_file_mb: int = DEFAULT_MAX_FILE_MB) -> str:
    size = f" ({size_bytes / 1_000_000:.0f} MB)" if size_bytes else ""
    return (
        f"📦 That file is too big{size}: I look at files up to {max_file_mb} MB. "
        "Send it as a photo instead, Telegram will shrink it."
    )


def from_preview(verdict_text: str, max_file_mb: int = DEFAULT_MAX_FILE_MB) -> str:
    """A verdict on Telegram's small preview of a file too big to download."""
    return f"{verdict_text}\n(from Telegram's preview: the file is over {max_file_mb} MB)"


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
    return "⏳ I'm swamped with photos right now. Please send that one again in a few seconds."


def failed() -> str:
    return "⚠️ Sorry, something went wrong on my side. Please try again."


def not_allowed() -> str:
    return "🔒 Sorry, this bot is private and doesn't answer in this chat."


def not_allowed_group() -> str:
    return "🔒 Sorry, this bot is private, so it is leaving this group."


def hotdog_usage_private(spec: ModelSpec | None = None) -> str:
    if spec is None or is_hotdog(spec):
        return "Send me a photo and I'll tell you if it's a hotdog 🌭  (/help for more)"
    return f"Send me a photo and I'll tell you: {_told_apart(spec)}  (/help for more)"
