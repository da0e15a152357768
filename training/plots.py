"""The run report's pictures: training curves, confusion matrix, ROC curve, worst mistakes.

Figures are built on ``matplotlib.figure.Figure`` and saved with the Agg renderer, never through
pyplot, so nothing here touches global backend state or needs a display, and it is thread-safe.
Small PNGs (100 dpi): they are for a glance in a file browser or a pull request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import roc_curve

from nothotdog.contract import ImageDecodeError, decode_image
from nothotdog.contract.dataset import Example
from nothotdog.contract.heatmap import overlay
from nothotdog.contract.spec import says_positive
from nothotdog.training.metrics import predict_labels, roc_auc

DPI = 100
THUMBNAIL = 128  # pixels; thumbnails go through the contract's decode, like the model's input
# One image's file to the model's raw heatmap (contract.heatmap), when the model has one.
HeatmapFn = Callable[[Path], np.ndarray]


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
            ax.annotate(
                f"{phase} starts",
                (start + 0.5, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=8,
                color="grey",
                ha="left",
                va="top",
                rotation=90,
            )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
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
            ax.text(
                j,
                i,
                f"{cm[i, j]}\n{share[i, j]:.0%}",
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(k), labels, rotation=20)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix")
    return _save(fig, path)


def plot_roc(
    is_positive: Sequence[bool] | np.ndarray,
    p_pos: Sequence[float] | np.ndarray,
    path: str | Path,
    positive_label: str = "positive",
    threshold: float | None = None,
) -> Path:
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
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC: {positive_label} vs rest")
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


def worst_mistakes(
    y_true: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    positive_label: str,
    threshold: float,
    n: int,
) -> np.ndarray:
    """Indices of up to ``n`` misclassified examples, most confident first (lowest P(true))."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    wrong = np.flatnonzero(predict_labels(probs, labels, positive_label, threshold) != y_true)
    p_true = probs[wrong, y_true[wrong]]
    return wrong[np.argsort(p_true, kind="stable")][:n]


def plot_worst_mistakes(
    examples: Sequence[Example],
    probs: np.ndarray,
    labels: Sequence[str],
    positive_label: str,
    threshold: float,
    path: str | Path,
    n: int = 16,
    heatmap: HeatmapFn | None = None,
) -> Path:
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
        ax.set_title(
            f"true: {labels[example.label]}\nP({positive_label})={probs[i, pos]:.2f} · "
            f"{example.source}",
            fontsize=8,
        )
    how = "; bright: what looked most like " + positive_label if heatmap else ""
    fig.suptitle(f"most confident mistakes ({chosen.size} shown{how})", fontsize=10)
    return _save(fig, path)
