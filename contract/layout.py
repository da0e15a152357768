"""Names and sizes every room must agree on: the run folder's files, image suffixes, a megabyte.

Training writes a run folder, evaluation and export read it, the bot and the CLI accept
images: defined here once so a rename or a new format cannot reach only some of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nothotdog.contract.spec import DEFAULT_THRESHOLD, LABELS, POSITIVE_LABEL

# A training run folder (``nothotdog-train --out RUN``).
MODEL_FILE = "model.keras"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
FILES_FILE = "files.json"  # digests of the images trained on
CONFUSION_PNG = "confusion_matrix.png"
ROC_PNG = "roc_curve.png"
MISTAKES_PNG = "worst_mistakes.png"
HISTORY_PNG = "training_curves.png"

# File suffixes taken as images (lower case, with the dot): data folders, the CLI, documents
# sent to the bot without an image/* MIME type. HEIC needs the ``heif`` extra to decode.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)

MB = 1024 * 1024


class RunFolderError(ValueError):
    """A run folder's JSON files cannot be read or contradict the contract; says which."""


@dataclass(frozen=True)
class RunFacts:
    """What a run folder says about its model: labels, threshold, where it came from. A file
    that is missing (an older run, a bare .keras) leaves the contract's defaults."""

    labels: tuple[str, ...] = LABELS
    positive_label: str = POSITIVE_LABEL
    threshold: float = DEFAULT_THRESHOLD
    threshold_rule: str | None = None
    val_metrics: dict[str, Any] = field(default_factory=dict)
    weights_source: str | None = None
    data_summary: dict[str, Any] | None = None
    display: dict[str, str] = field(default_factory=dict)  # label -> the bot's text for it


def read_run_facts(folder: str | Path) -> RunFacts:
    """The facts in ``folder``'s labels.json, metrics.json and config.json, checked."""
    folder = Path(folder)
    labels_doc = _read_json(folder / LABELS_FILE)
    metrics_doc = _read_json(folder / METRICS_FILE)
    config_doc = _read_json(folder / CONFIG_FILE)
    labels = tuple(labels_doc.get("labels") or LABELS)
    positive = labels_doc.get("positive_label", POSITIVE_LABEL)
    if len(labels) < 2 or positive not in labels:
        raise RunFolderError(
            f"{folder / LABELS_FILE} must list at least two labels including the positive one "
            f"({positive!r}), got {list(labels)}"
        )
    display = labels_doc.get("display", {})
    if not isinstance(display, dict) or set(display) - set(labels):
        raise RunFolderError(f"{folder / LABELS_FILE}: 'display' must map labels to texts")
    threshold = float(metrics_doc.get("threshold", DEFAULT_THRESHOLD))
    if not 0.0 <= threshold <= 1.0:
        raise RunFolderError(f"{folder / METRICS_FILE}: threshold {threshold} is not a probability")
    val = metrics_doc.get("val", {})
    if not isinstance(val, dict):
        raise RunFolderError(f"{folder / METRICS_FILE}: 'val' must be an object")
    summary = config_doc.get("data_summary")
    return RunFacts(
        labels=labels,
        positive_label=positive,
        threshold=threshold,
        threshold_rule=metrics_doc.get("threshold_rule"),
        val_metrics=val,
        weights_source=config_doc.get("weights_source"),
        data_summary=summary if isinstance(summary, dict) else None,
        display={str(k): str(v) for k, v in display.items()},
    )


def _read_json(path: Path) -> dict[str, Any]:
    """A missing file is an empty object (older runs); a broken one is an error."""
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise RunFolderError(f"{path} must hold a JSON object")
    return doc
