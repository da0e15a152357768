"""The sentences about the model itself: its labels in words, /about, and the bot's profile
description, in the current language (``bot.i18n``); ``bot.replies`` has the rest."""

from __future__ import annotations

from collections.abc import Mapping

from nothotdog.bot.i18n import N_, _
from nothotdog.contract import ModelSpec

# The hot-dog model's words (contract.spec.HOTDOG_DISPLAY), marked for the catalogs. A label's
# text is looked up in the catalog as it is, so these are translated and a text of a model's
# own ("✅ Cat!") is shown as its author wrote it.
HOTDOG_WORDS = (N_("🌭 Hotdog!"), N_("🚫 Not hotdog"))

# Telegram's limits for setMyDescription and setMyShortDescription.
DESCRIPTION_MAX = 512
SHORT_DESCRIPTION_MAX = 120


def is_hotdog(spec: ModelSpec) -> bool:
    """The hot-dog model: it keeps the words its users know."""
    return set(spec.labels) == {"hot_dog", "not_hot_dog"}


def label_text(spec: ModelSpec, label: str) -> str:
    """What the bot says for ``label``, in the current language where the catalog has it."""
    return _(spec.display_text(label))


def told_apart(spec: ModelSpec) -> str:
    """What this model tells apart, in its own words: "Cat or not", "Blue, Green or Red"."""
    if spec.two_class:
        return _("{label} or not").format(label=words(label_text(spec, spec.positive_label)))
    texts = [words(label_text(spec, label)) for label in spec.labels]
    # TRANSLATORS: {labels} is a comma-separated list of all but the last label.
    return _("{labels} or {last}").format(labels=", ".join(texts[:-1]), last=texts[-1])


def words(text: str) -> str:
    """A display text without its emoji and exclamation: "✅ Cat!" -> "Cat"."""
    kept = [w for w in text.split() if any(c.isalnum() for c in w)]
    return " ".join(kept).rstrip("!") or text


def description(spec: ModelSpec) -> str:
    """The bot's profile text, shown in an empty chat before /start."""
    if is_hotdog(spec):
        text = _("🌭 Send me a photo, a sticker or a GIF and I'll tell you: hotdog, or not "
                 "hotdog. In a group, reply to any photo with /hotdog.")  # fmt: skip
    else:
        text = _("👋 Send me a photo, a sticker or a GIF and I'll tell you: {told_apart}. In a "
                 "group, reply to any photo with /classify.").format(told_apart=told_apart(spec))
    return text[:DESCRIPTION_MAX]


def short_description(spec: ModelSpec) -> str:
    """The line on the bot's profile page and in shared links."""
    if is_hotdog(spec):
        text = _("I tell hotdogs from not-hotdogs. Send me a photo!")
    else:
        text = _("I look at photos and tell: {told_apart}.").format(told_apart=told_apart(spec))
    return text[:SHORT_DESCRIPTION_MAX]


def about(spec: ModelSpec) -> str:
    labels = ", ".join(spec.labels)
    threshold = f"{spec.threshold:.2f}"
    if is_hotdog(spec):
        rule = _("Labels: {labels} (hotdog = {positive})\n"
                 "Threshold: {threshold} (says hotdog when P({positive}) ≥ it)").format(
            labels=labels, positive=spec.positive_label, threshold=threshold)  # fmt: skip
    elif spec.two_class:
        rule = _("Labels: {labels}\n"
                 "Threshold: {threshold} (says {positive} when P({positive}) ≥ it)").format(
            labels=_label_list(spec), positive=spec.positive_label,
            threshold=threshold)  # fmt: skip
    else:
        rule = _("Labels: {labels}\nRule: the most probable label wins").format(
            labels=_label_list(spec))
    return "\n".join([
        _("Model: {name} (version {version})").format(name=spec.name, version=spec.version),
        rule,
        _("Accuracy: {measured}").format(measured=_measured(spec)),
        *_per_source(spec),
        _("Input: {size}×{size} RGB, whole photo resized ({resize})").format(
            size=spec.input_size, resize=spec.resize),
    ])  # fmt: skip


def _label_list(spec: ModelSpec) -> str:
    """Each label with the text the bot shows for it: "red (Red), green (Green)"."""
    return ", ".join(f"{label} ({label_text(spec, label)})" for label in spec.labels)


def _per_source(spec: ModelSpec) -> list[str]:
    """One line per photo source: test accuracy (photos), validation beside it; none when the
    file carries no per-source figures."""
    test, val = (m.get("per_source") for m in (spec.test_metrics, spec.metrics))
    test, val = (m if isinstance(m, Mapping) else {} for m in (test, val))
    rows, beside = (test, val) if test else (val, {})
    lines = []
    for name, figures in rows.items():
        acc, other = find_accuracy(figures), find_accuracy(beside.get(name, {}))
        if acc is None:
            continue
        # TRANSLATORS: {n} is how many test photos came from this source: always many.
        line = _("  {source}: {accuracy} ({n} photos)").format(
            source=name, accuracy=f"{acc:.1%}", n=figures.get("n"))
        lines.append(line + (f", {other:.1%}" if other is not None else ""))
    if not lines:
        return []
    return [_("By source (test, validation):") if beside else _("By source:"), *lines]


def _measured(spec: ModelSpec) -> str:
    """Test accuracy of this very file first (what users get), validation beside it."""
    parts = []
    test = find_accuracy(spec.test_metrics)
    if test is not None:
        n = spec.test_metrics.get("n")
        text = _("{accuracy} on held-out test photos").format(accuracy=f"{test:.1%}")
        parts.append(text + (f" ({n})" if n else ""))
    val = find_accuracy(spec.metrics)
    if val is not None:
        parts.append(_("{accuracy} on validation").format(accuracy=f"{val:.1%}"))
    return ", ".join(parts) or _("not recorded")


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
