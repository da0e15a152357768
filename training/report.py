"""The run report: metrics JSON, PNG plots and a text summary, from predictions.

Training (after each phase) and ``nothotdog-eval`` (on any folder, Keras or ONNX) both call
``write_evaluation``, so their numbers and pictures are comparable by construction. Figures
are built on ``matplotlib.figure.Figure`` and saved with the Agg renderer, never through
pyplot: no global backend state, no display needed, thread-safe. Small PNGs (100 dpi), for a
glance in a file browser or a pull request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import roc_curve

from nothotdog.contract import ImageDecodeError, decode_image, layout
from nothotdog.contract.dataset import Example
from nothotdog.contract.heatmap import overlay
from nothotdog.contract.spec import says_positive
from nothotdog.training.metrics import compute_metrics, predict_labels, roc_auc

DPI = 100
THUMBNAIL = 128  # pixels; thumbnails go through the contract's decode, like the model's input
WORST_MISTAKES_SHOWN = 16
# One image's file to the model's raw heatmap (contract.heatmap), when the model has one.
HeatmapFn = Callable[[Path], np.ndarray]


def write_evaluation(
    out_dir: str | Path, y_true: Sequence[int] | np.ndarray, probs: np.ndarray,
    examples: Sequence[Example], labels: Sequence[str], positive_label: str, threshold: float,
    history: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    heatmap: HeatmapFn | None = None,
) -> dict[str, object]:  # fmt: skip
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
    (out / layout.METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    pos = labels.index(positive_label)
    plot_confusion_matrix(metrics["confusion_matrix"], labels, out / layout.CONFUSION_PNG)
    plot_roc(y == pos, p[:, pos], out / layout.ROC_PNG, positive_label, threshold)
    plot_worst_mistakes(examples, p, labels, positive_label, threshold, out / layout.MISTAKES_PNG,
                        WORST_MISTAKES_SHOWN, heatmap=heatmap)  # fmt: skip
    if history is not None:
        plot_history(history, out / layout.HISTORY_PNG)
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
    extras = [f"positive label {metrics.get('positive_label', '?')}",
              f"threshold {metrics['threshold']:.4g}"]
    for name, key in (("balanced accuracy", "balanced_accuracy"), ("ROC-AUC", "roc_auc"),
                      ("log loss", "log_loss"), ("ECE", "ece")):
        extras.append(f"{name} {_cell(metrics.get(key))}")  # fmt: skip
    return "\n".join([*lines, ", ".join(extras)])


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _message(path: str | Path, text: str, size: tuple[float, float] = (4, 3)) -> Path:
    """A figure that says why there is no plot, so the report always has the same files."""
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.set_axis_off()
    return _save(fig, path)


def plot_history(history: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, phases end to end, a dashed line where each later phase starts.

    ``history`` is ``{"phase1": {"loss": [...], "val_loss": [...], ...}, "phase2": {...}}``;
    phases are drawn in the mapping's order, missing series are skipped.
    """
    panels = [("loss", "loss"), ("accuracy", "accuracy")]
    panels = [p for p in panels if any(p[0] in h or f"val_{p[0]}" in h for h in history.values())]
    if not panels:
        return _message(path, "no loss or accuracy recorded")
    fig = Figure(figsize=(5 * len(panels), 3.5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    starts: list[tuple[int, str]] = []
    offset = 0
    for phase, series in history.items():
        length = max((len(v) for v in series.values()), default=0)
        if offset:
            starts.append((offset, phase))
        for ax, (key, _) in zip(axes, panels, strict=True):
            for name, style in ((key, "-"), (f"val_{key}", "--")):
                values = series.get(name)
                if values:
                    x = offset + 1 + np.arange(len(values))
                    color = "C0" if name == key else "C1"
                    label = name if not starts else None  # one legend entry per series
                    ax.plot(x, values, style, color=color, marker=".", label=label)
        offset += length
    for ax, (key, title) in zip(axes, panels, strict=True):
        for start, phase in starts:
            ax.axvline(start + 0.5, color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"{phase} starts", (start + 0.5, 1.0), xycoords=("data", "axes fraction"),
                        fontsize=8, color="grey", ha="left", va="top", rotation=90)  # fmt: skip
        ax.set(title=title, xlabel="epoch", ylabel=key)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(fig, path)


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path
) -> Path:
    """Counts with each row's share: rows are the true class, columns the prediction."""
    cm = np.asarray(confusion, dtype=np.int64)
    k = len(labels)
    fig = Figure(figsize=(1.6 * k + 1.6, 1.4 * k + 1.2))
    ax = fig.add_subplot()
    row_sums = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    share = cm / row_sums
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            color = "white" if share[i, j] > 0.6 else "black"
            ax.text(j, i, f"{cm[i, j]}\n{share[i, j]:.0%}", ha="center", va="center", color=color)
    ax.set_xticks(range(k), labels, rotation=20)
    ax.set_yticks(range(k), labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    return _save(fig, path)


def plot_roc(
    is_positive: Sequence[bool] | np.ndarray, p_pos: Sequence[float] | np.ndarray,
    path: str | Path, positive_label: str = "positive", threshold: float | None = None,
) -> Path:  # fmt: skip
    """ROC curve of P(positive) with its AUC, and the operating point of ``threshold``."""
    y = np.asarray(is_positive, dtype=bool)
    p = np.asarray(p_pos, dtype=np.float64)
    auc = roc_auc(y, p)
    if auc is None:
        return _message(path, "ROC curve undefined:\nonly one class present")
    fpr, tpr, _ = roc_curve(y, p)
    fig = Figure(figsize=(4.2, 4))
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color="C0", label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
    if threshold is not None:
        pred = says_positive(p, threshold)
        point = ((pred & ~y).sum() / (~y).sum(), (pred & y).sum() / y.sum())
        ax.plot(*point, "o", color="C3", label=f"threshold {threshold:.3g}")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate",
           ylabel="true positive rate", title=f"ROC: {positive_label} vs rest")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _thumbnail(path: Path) -> np.ndarray:
    try:
        return decode_image(Path(path).read_bytes(), size=THUMBNAIL)
    except (OSError, ImageDecodeError):
        return np.full((THUMBNAIL, THUMBNAIL, 3), 128, dtype=np.uint8)


def _with_heatmap(path: Path, heatmap: HeatmapFn) -> np.ndarray:
    thumbnail = _thumbnail(path)
    try:
        heat = heatmap(Path(path))
    except (OSError, ImageDecodeError):
        return thumbnail
    return np.asarray(overlay(Image.fromarray(thumbnail), heat))


def worst_mistakes(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                   positive_label: str, threshold: float, n: int) -> np.ndarray:  # fmt: skip
    """Indices of up to ``n`` misclassified examples, most confident first (lowest P(true))."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    wrong = np.flatnonzero(predict_labels(probs, labels, positive_label, threshold) != y_true)
    p_true = probs[wrong, y_true[wrong]]
    return wrong[np.argsort(p_true, kind="stable")][:n]


def plot_worst_mistakes(
    examples: Sequence[Example], probs: np.ndarray, labels: Sequence[str], positive_label: str,
    threshold: float, path: str | Path, n: int = 16, heatmap: HeatmapFn | None = None,
) -> Path:  # fmt: skip
    """A grid of the ``n`` most confidently wrong images: what the model needs to learn next.

    Each title gives the true label, P(positive) and the source tag; unreadable files show grey.
    With ``heatmap`` each image carries it, drawn as /why draws it: what fooled the model.
    """
    y_true = np.array([e.label for e in examples], dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    chosen = worst_mistakes(y_true, probs, labels, positive_label, threshold, n)
    if chosen.size == 0:
        return _message(path, f"no mistakes among {len(examples)} images")
    pos = list(labels).index(positive_label)
    cols = min(4, chosen.size)
    rows = math.ceil(chosen.size / cols)
    fig = Figure(figsize=(2.3 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, i in zip(axes, chosen, strict=False):
        example = examples[i]
        ax.imshow(_with_heatmap(example.path, heatmap) if heatmap else _thumbnail(example.path))
        ax.set_title(f"true: {labels[example.label]}\nP({positive_label})={probs[i, pos]:.2f} · "
                     f"{example.source}", fontsize=8)  # fmt: skip
    how = "; bright: what looked most like " + positive_label if heatmap else ""
    fig.suptitle(f"most confident mistakes ({chosen.size} shown{how})", fontsize=10)
    return _save(fig, path)
