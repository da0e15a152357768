"""Classification metrics in plain numpy, so evaluation needs neither sklearn nor TensorFlow.

The prediction rule is the bot's (``contract.ModelSpec.verdict``): with two classes the positive
label wins iff P(positive) >= threshold, otherwise argmax. Metrics computed any other way would
describe a model nobody ships.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LOG_LOSS_EPS = 1e-7  # the probability floor for log loss, so one certain mistake is not infinite
THRESHOLD_TOL = 1e-12  # balanced accuracies closer than this count as a tie


def predict_labels(
    probs: np.ndarray, labels: Sequence[str], positive_label: str, threshold: float
) -> np.ndarray:
    """Predicted class indices with the same rule as ``ModelSpec.verdict``."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(labels):
        raise ValueError(f"probs must be [n, {len(labels)}], got shape {probs.shape}")
    if len(labels) == 2:
        pos = list(labels).index(positive_label)
        return np.where(probs[:, pos] >= threshold, pos, 1 - pos).astype(np.int64)
    return np.argmax(probs, axis=1).astype(np.int64)


def roc_curve(is_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """False and true positive rates (and their thresholds), one point per distinct score.

    Tied scores form a single step, which makes the trapezoid area equal to the Mann-Whitney AUC.
    Returns ``(fpr, tpr, thresholds)`` starting at (0, 0) with threshold +inf.
    """
    y = np.asarray(is_positive, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("a ROC curve needs both positive and negative examples")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each tie group
    tps = np.cumsum(y)[last_of_run]
    fps = (last_of_run + 1) - tps
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    return fpr, tpr, np.r_[np.inf, s[last_of_run]]


def roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve; None when only one class is present (it is undefined)."""
    y = np.asarray(is_positive, dtype=bool)
    if y.all() or not y.any():
        return None
    fpr, tpr, _ = roc_curve(y, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Counts ``[k, k]``: rows are the true class, columns the predicted one."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def _ratio(num: float, den: float) -> float:
    """num/den, or 0.0 when den is 0."""
    return float(num / den) if den else 0.0


def _ratio_or_none(num: float, den: float) -> float | None:
    """num/den, or None when den is 0: a per-source figure with nothing to count is undefined,
    and printing 0.0 for it would read as a failure."""
    return float(num / den) if den else None


def _metrics(
    y_true: np.ndarray, probs: np.ndarray, y_pred: np.ndarray, pos: int, k: int,
    threshold: float = 0.5,
) -> dict[str, object]:
    n = int(y_true.size)
    cm = confusion_matrix(y_true, y_pred, k)
    support = cm.sum(axis=1)
    present = support > 0
    per_class_recall = np.diag(cm)[present] / support[present]
    tp = int(cm[pos, pos])
    fp = int(cm[:, pos].sum()) - tp
    fn = int(cm[pos, :].sum()) - tp
    precision = _ratio_or_none(tp, tp + fp)  # None: nothing predicted positive
    recall = _ratio_or_none(tp, tp + fn)  # None: no positive example
    if recall is None:
        f1 = None
    elif precision is None:  # positives exist but none was predicted: recall is 0
        f1 = 0.0
    else:
        f1 = _ratio(2 * precision * recall, precision + recall)
    p_true = np.clip(probs[np.arange(n), y_true], LOG_LOSS_EPS, 1.0)
    return {
        "n": n,
        "accuracy": _ratio(int(np.trace(cm)), n),
        "balanced_accuracy": float(per_class_recall.mean()) if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y_true == pos, probs[:, pos]),
        "log_loss": float(-np.log(p_true).mean()) if n else 0.0,
        "ece": _ece(y_true, probs, pos, threshold) if k == 2 and n else None,
        "confusion_matrix": cm.tolist(),
    }


def _ece(y_true: np.ndarray, probs: np.ndarray, pos: int, threshold: float) -> float:
    from training.calibration import expected_calibration_error

    return expected_calibration_error(y_true == pos, probs[:, pos], threshold)


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    positive_label: str,
    threshold: float,
    sources: Sequence[str] | None = None,
) -> dict[str, object]:
    """Accuracy, balanced accuracy, precision/recall/F1 of the positive class, ROC-AUC, log loss
    and the confusion matrix, overall and (when ``sources`` is given) per source tag.

    Per-source figures show whether a model is good at hotdogs or only at one site's photos.
    A figure with nothing to count is None rather than a misleading 0: precision when nothing
    is predicted positive, recall and F1 when there is no positive example, ROC-AUC when only
    one class is present. Everything returned is plain Python (int, float, None, list, dict),
    ready for ``json.dump``.
    """
    labels = list(labels)
    if positive_label not in labels:
        raise ValueError(f"positive label {positive_label!r} is not one of {labels}")
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape != (y.size, len(labels)):
        raise ValueError(f"probs must be [{y.size}, {len(labels)}], got shape {p.shape}")
    if y.size and (y.min() < 0 or y.max() >= len(labels)):
        raise ValueError(f"y_true holds class indices outside 0..{len(labels) - 1}")
    pos = labels.index(positive_label)
    y_pred = predict_labels(p, labels, positive_label, threshold)
    shared = {"labels": labels, "positive_label": positive_label, "threshold": float(threshold)}
    result = {**_metrics(y, p, y_pred, pos, len(labels), threshold), **shared}
    if sources is not None:
        tags = np.asarray(list(sources), dtype=object)
        if tags.size != y.size:
            raise ValueError(f"got {tags.size} source tags for {y.size} examples")
        per_source: dict[str, object] = {}
        for tag in sorted(set(tags.tolist())):
            mask = tags == tag
            part = _metrics(y[mask], p[mask], y_pred[mask], pos, len(labels), threshold)
            per_source[str(tag)] = {**part, **shared}
        result["per_source"] = per_source
    return result


def choose_threshold(
    y_true_is_positive: Sequence[bool] | np.ndarray, p_pos: Sequence[float] | np.ndarray
) -> tuple[float, str]:
    """The threshold on P(positive) that maximises balanced accuracy on validation data.

    Balanced accuracy, not accuracy, so a class imbalance in validation cannot buy a threshold
    that ignores the smaller class. Candidates are the midpoints between consecutive distinct
    probabilities (every distinct decision the data allows) plus 0.5; ties go to the candidate
    nearest 0.5, the least surprising choice. Returns the threshold and the rule in one sentence.
    """
    y = np.asarray(y_true_is_positive, dtype=bool).reshape(-1)
    p = np.asarray(p_pos, dtype=np.float64).reshape(-1)
    if y.size != p.size:
        raise ValueError(f"got {y.size} labels for {p.size} probabilities")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5, (
            "Kept the default threshold 0.5 on P(positive): the validation data holds only one "
            "class, so balanced accuracy cannot choose one."
        )
    distinct = np.unique(p)
    candidates = np.unique(np.r_[(distinct[1:] + distinct[:-1]) / 2.0, 0.5])
    pos_sorted, neg_sorted = np.sort(p[y]), np.sort(p[~y])
    # positive iff p >= t: true positives are positives at or above t, true negatives below it.
    tp = n_pos - np.searchsorted(pos_sorted, candidates, side="left")
    tn = np.searchsorted(neg_sorted, candidates, side="left")
    bal_acc = (tp / n_pos + tn / n_neg) / 2.0
    best = bal_acc.max()
    tied = np.flatnonzero(bal_acc >= best - THRESHOLD_TOL)
    t = float(candidates[tied[np.argmin(np.abs(candidates[tied] - 0.5))]])
    rule = (
        f"Threshold {t:.4g} on P(positive) maximises balanced accuracy on the validation set "
        f"({best:.4f}, {n_pos} positive and {n_neg} negative examples), chosen among the "
        "midpoints between distinct validation probabilities and 0.5, ties going to the one "
        "nearest 0.5."
    )
    return t, rule
