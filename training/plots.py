"""The evaluation's pictures: training curves, confusion matrix, ROC curve, worst mistakes.

Small PNGs written into the evaluation folder beside metrics.json, for a glance in a file
browser or a pull request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

from nothotdog.contract import ImageDecodeError, load_image_file
from nothotdog.contract.dataset import Example
from nothotdog.contract.heatmap import overlay
from nothotdog.contract.spec import says_positive
from nothotdog.training.metrics import predict_labels, roc_auc

# One image's file to the model's raw heatmap (contract.heatmap), when the model has one.
HeatmapFn = Callable[[Path], np.ndarray]
DPI = 100
THUMBNAIL = 128  # pixels; thumbnails go through the contract's decode, like the model's input
WORST_MISTAKES_SHOWN = 16


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
    """Loss and accuracy per epoch of ``{"phase1": {"loss": [...], "val_loss": [...]}, ...}``,
    phases end to end in the mapping's order, a dotted line where each later phase starts."""
    panels = [key for key in ("loss", "accuracy")
              if any(key in h or f"val_{key}" in h for h in history.values())]  # fmt: skip
    if not panels:
        return _message(path, "no loss or accuracy recorded")
    fig = Figure(figsize=(5 * len(panels), 3.5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    starts: list[tuple[int, str]] = []
    offset = 0
    for phase, series in history.items():
        if offset:
            starts.append((offset, phase))
        for ax, key in zip(axes, panels, strict=True):
            for name, style, color in ((key, "-", "C0"), (f"val_{key}", "--", "C1")):
                if values := series.get(name):
                    label = name if not starts else None  # one legend entry per series
                    ax.plot(offset + 1 + np.arange(len(values)), values, style, color=color,
                            marker=".", label=label)  # fmt: skip
        offset += max((len(v) for v in series.values()), default=0)
    for ax, key in zip(axes, panels, strict=True):
        for start, phase in starts:
            ax.axvline(start + 0.5, color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"{phase} starts", (start + 0.5, 1.0), xycoords=("data", "axes fraction"),
                        fontsize=8, color="grey", ha="left", va="top", rotation=90)  # fmt: skip
        ax.set(title=key, xlabel="epoch", ylabel=key)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(fig, path)


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path
) -> Path:
    """Counts with each row's share: rows are the true class, columns the prediction."""
    cm = np.asarray(confusion, dtype=np.int64)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(labels)
    fig = Figure(figsize=(1.6 * k + 1.6, 1.4 * k + 1.2))
    display = ConfusionMatrixDisplay(share, display_labels=list(labels)).plot(
        ax=fig.add_subplot(), cmap="Blues", colorbar=False, xticks_rotation=20,
        im_kw={"vmin": 0.0, "vmax": 1.0},
    )  # fmt: skip
    for (i, j), text in np.ndenumerate(display.text_):
        text.set_text(f"{cm[i, j]}\n{share[i, j]:.0%}")
    display.ax_.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    return _save(fig, path)


def plot_roc(
    is_positive: Sequence[bool] | np.ndarray, p_pos: Sequence[float] | np.ndarray,
    path: str | Path, positive_label: str = "positive", threshold: float | None = None,
) -> Path:  # fmt: skip
    """ROC curve of P(positive) with its AUC, and the operating point of ``threshold``."""
    y = np.asarray(is_positive, dtype=bool)
    p = np.asarray(p_pos, dtype=np.float64)
    if roc_auc(y, p) is None:
        return _message(path, "ROC curve undefined:\nonly one class present")
    fig = Figure(figsize=(4.2, 4))
    ax = fig.add_subplot()
    RocCurveDisplay.from_predictions(y, p, name=positive_label, ax=ax, plot_chance_level=True)
    if threshold is not None:
        pred = says_positive(p, threshold)
        point = ((pred & ~y).sum() / (~y).sum(), (pred & y).sum() / y.sum())
        ax.plot(*point, "o", color="C3", label=f"threshold {threshold:.3g}")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate",
           ylabel="true positive rate", title=f"ROC: {positive_label} vs rest")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _thumbnail(path: Path, heatmap: HeatmapFn | None) -> np.ndarray:
    """The image as the model saw it (grey when unreadable), with its heatmap when there is one."""
    try:
        thumbnail = load_image_file(path, THUMBNAIL)
        if heatmap is None:
            return thumbnail
        return np.asarray(overlay(Image.fromarray(thumbnail), heatmap(path)))
    except (OSError, ImageDecodeError):
        return np.full((THUMBNAIL, THUMBNAIL, 3), 128, dtype=np.uint8)


def plot_worst_mistakes(
    examples: Sequence[Example], probs: np.ndarray, labels: Sequence[str], positive_label: str,
    threshold: float, path: str | Path, n: int = 16, heatmap: HeatmapFn | None = None,
) -> Path:  # fmt: skip
    """A grid of the ``n`` most confidently wrong images: what the model needs to learn next.
    Titles give the true label, P(positive) and source tag; unreadable files show grey. With
    ``heatmap`` each image carries it, drawn as /why draws it: what fooled the model."""
    y_true = np.array([e.label for e in examples], dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    wrong = np.flatnonzero(predict_labels(probs, labels, positive_label, threshold) != y_true)
    chosen = wrong[np.argsort(probs[wrong, y_true[wrong]], kind="stable")][:n]  # lowest P(true)
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
        ax.imshow(_thumbnail(example.path, heatmap))
        ax.set_title(f"true: {labels[example.label]}\nP({positive_label})={probs[i, pos]:.2f} · "
                     f"{example.source}", fontsize=8)  # fmt: skip
    how = "; bright: what looked most like " + positive_label if heatmap else ""
    fig.suptitle(f"most confident mistakes ({chosen.size} shown{how})", fontsize=10)
    return _save(fig, path)

