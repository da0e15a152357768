"""What a training run folder says about its model, read without TensorFlow."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract import DEFAULT_THRESHOLD, LABELS, POSITIVE_LABEL
from contract.layout import CONFIG_FILE, LABELS_FILE, METRICS_FILE, MODEL_FILE


class SourceError(ValueError):
    """The run folder or model path cannot be exported; the message says why."""


@dataclass(frozen=True)
class TrainedRun:
    """The facts export copies into the ONNX metadata; contract defaults for a bare .keras."""

    model_path: Path
    run_dir: Path | None
    labels: tuple[str, ...] = LABELS
    positive_label: str = POSITIVE_LABEL
    threshold: float = DEFAULT_THRESHOLD
    threshold_rule: str | None = None
    val_metrics: dict[str, Any] = field(default_factory=dict)
    weights_source: str | None = None
    data_summary: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """A short tag for the model version: the run folder, else the file's stem."""
        return self.run_dir.name if self.run_dir is not None else self.model_path.stem


def read_run(path: str | Path) -> TrainedRun:
    """Accept a run folder (model.keras + JSON files) or a bare .keras file."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".keras":
            raise SourceError(f"{path} is not a .keras file")
        return TrainedRun(model_path=path, run_dir=None)
    if not path.is_dir():
        raise SourceError(f"{path} is neither a run folder nor a .keras file")
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise SourceError(f"run folder {path} has no {MODEL_FILE}")

    labels_doc = _read_json(path / LABELS_FILE)
    metrics_doc = _read_json(path / METRICS_FILE)
    config_doc = _read_json(path / CONFIG_FILE)

    labels = tuple(labels_doc.get("labels", LABELS))
    positive = labels_doc.get("positive_label", POSITIVE_LABEL)
    if positive not in labels:
        raise SourceError(f"{path / LABELS_FILE}: positive label {positive!r} not in {labels}")
    threshold = float(metrics_doc.get("threshold", DEFAULT_THRESHOLD))
    if not 0.0 <= threshold <= 1.0:
        raise SourceError(f"{path / METRICS_FILE}: threshold {threshold} is not a probability")
    val = metrics_doc.get("val", {})
    if not isinstance(val, dict):
        raise SourceError(f"{path / METRICS_FILE}: 'val' must be an object")
    summary = config_doc.get("data_summary")
    return TrainedRun(
        model_path=model_path,
        run_dir=path,
        labels=labels,
        positive_label=positive,
        threshold=threshold,
        threshold_rule=metrics_doc.get("threshold_rule"),
        val_metrics=val,
        weights_source=config_doc.get("weights_source"),
        data_summary=summary if isinstance(summary, dict) else None,
    )


def _read_json(path: Path) -> dict[str, Any]:
    """A missing file is an empty object (older runs); a broken one is an error."""
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise SourceError(f"{path} must hold a JSON object")
    return doc
