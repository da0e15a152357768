"""One call that turns predictions into the report: metrics JSON, PNG plots and a text summary.

Training (after each phase) and ``nothotdog-eval`` (on any folder, Keras or ONNX) both call
``write_evaluation``, so their numbers and pictures are comparable by construction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nothotdog.contract.dataset import Example
from nothotdog.contract.layout import (
    CONFUSION_PNG,
    HISTORY_PNG,
    METRICS_FILE,
    MISTAKES_PNG,
    ROC_PNG,
)
from nothotdog.training import plots
from nothotdog.training.metrics import compute_metrics

WORST_MISTAKES_SHOWN = 16


def write_evaluation(
    out_dir: str | Path,
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    examples: Sequence[Example],
    labels: Sequence[str],
    positive_label: str,
    threshold: float,
    history: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    heatmap: plots.HeatmapFn | None = None,
) -> dict[str, object]:
    """Compute the metrics (overall and per source tag), write them and the plots, return them.

    Writes ``metrics.json``, ``confusion_matrix.png``, ``roc_curve.png``, ``worst_mistakes.png``
    and, when ``history`` is given, ``training_curves.png`` into ``out_dir`` (created if needed).
    With ``heatmap`` (a model with a heatmap output) the worst mistakes show where it looked.
    The returned dict is exactly what ``metrics.json`` holds.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(labels)
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if len(examples) != y.size:
        raise ValueError(f"got {len(examples)} examples for {y.size} labels")
    metrics = compute_metrics(
        y, p, labels, positive_label, threshold, sources=[e.source for e in examples]
    )
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    pos = labels.index(positive_label)
    plots.plot_confusion_matrix(metrics["confusion_matrix"], labels, out / CONFUSION_PNG)
    plots.plot_roc(y == pos, p[:, pos], out / ROC_PNG, positive_label, threshold)
    plots.plot_worst_mistakes(
        examples, p, labels, positive_label, threshold, out / MISTAKES_PNG, WORST_MISTAKES_SHOWN,
        heatmap=heatmap,
    )
    if history is not None:
        plots.plot_history(history, out / HISTORY_PNG)
    return metrics


def _cell(value: object) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_summary(metrics: Mapping[str, object]) -> str:
    """A short plain-text table: the overall line, then one line per source tag.

    ``-`` marks a figure that is undefined for that group (e.g. recall with no positive example).
    """
    rows = [("overall", metrics)]
    rows += sorted(dict(metrics.get("per_source") or {}).items())
    width = max(len("source"), *(len(name) for name, _ in rows))
    header = f"{'source':<{width}}  {'n':>6}  {'accuracy':>8}  {'precision':>9}  {'recall':>6}"
    lines = [header]
    for name, m in rows:
        lines.append(
            f"{name:<{width}}  {m['n']:>6}  {_cell(m['accuracy']):>8}  "
            f"{_cell(m['precision']):>9}  {_cell(m['recall']):>6}"
        )
    extras = [f"positive label {metrics.get('positive_label', '?')}"]
    extras.append(f"threshold {metrics['threshold']:.4g}")
    extras.append(f"balanced accuracy {_cell(metrics.get('balanced_accuracy'))}")
    extras.append(f"ROC-AUC {_cell(metrics.get('roc_auc'))}")
    extras.append(f"log loss {_cell(metrics.get('log_loss'))}")
    extras.append(f"ECE {_cell(metrics.get('ece'))}")
    return "\n".join([*lines, ", ".join(extras)])
