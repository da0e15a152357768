"""Classification metrics, and probabilities that mean what they say.

Metrics are scikit-learn's, with None where a figure has nothing to count, and the prediction
rule is the bot's (``contract.ModelSpec.decide``): metrics computed any other way would
describe a model nobody ships.

Calibration: the bot shows the probability of its verdict. With a tuned threshold (say 0.537) a
verdict of "not hotdog" could come with "48%". Platt scaling fits ``P = sigmoid(a * logit + b)``
to the validation labels; because the head is one Dense layer and a two-class softmax, the same
map is exact when folded into that layer's weights, so the exported graph outputs calibrated
probabilities, the threshold is 0.5, and the shown number is never below 50%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from nothotdog.contract import OUTPUT_NAME, ModelSpec
from nothotdog.contract.spec import says_positive

LOG_LOSS_EPS = 1e-7  # the probability floor for log loss, so one certain mistake is not infinite
THRESHOLD_TOL = 1e-12  # balanced accuracies closer than this count as a tie
ECE_BINS = 15


def predict_labels(
    probs: np.ndarray, labels: Sequence[str], positive_label: str, threshold: float
) -> np.ndarray:
    """Predicted class indices: ``ModelSpec.decide`` for these labels and threshold."""
    return ModelSpec(tuple(labels), positive_label, threshold).decide(probs)


def accuracy(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Fraction right (0.0 for no examples): training, evaluation and export's int8 gate."""
    return float(skm.accuracy_score(y_true, y_pred)) if len(y_true) else 0.0


def roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve; None when only one class is present (it is undefined)."""
    y = np.asarray(is_positive, dtype=bool)
    if y.all() or not y.any():
        return None
    return float(skm.roc_auc_score(y, scores))


def _ratio_or_none(num: float, den: float) -> float | None:
    """num/den, or None when den is 0: a per-source figure with nothing to count is undefined,
    and printing 0.0 for it would read as a failure."""
    return float(num / den) if den else None


def _metrics(y_true: np.ndarray, probs: np.ndarray, y_pred: np.ndarray, pos: int, k: int,
             threshold: float = 0.5) -> dict[str, object]:  # fmt: skip
    n = int(y_true.size)
    cm = skm.confusion_matrix(y_true, y_pred, labels=range(k))
    support = cm.sum(axis=1)
    tp, predicted, actual = int(cm[pos, pos]), int(cm[:, pos].sum()), int(support[pos])
    precision = _ratio_or_none(tp, predicted)  # None: nothing predicted positive
    recall = _ratio_or_none(tp, actual)  # None: no positive example
    # Not sklearn's f1, which says 0.0 where there is no positive example to find.
    f1 = None if recall is None else 2 * tp / (predicted + actual)
    # By hand: sklearn's log_loss no longer takes a floor and warns on floored rows.
    p_true = np.clip(probs[np.arange(n), y_true], LOG_LOSS_EPS, 1.0)
    return {
        "n": n,
        "accuracy": accuracy(y_true, y_pred),
        "balanced_accuracy": float((np.diag(cm)[support > 0] / support[support > 0]).mean()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y_true == pos, probs[:, pos]),
        "log_loss": float(-np.log(p_true).mean()),
        "ece": (expected_calibration_error(y_true == pos, probs[:, pos], threshold)
                if k == 2 else None),
        "confusion_matrix": cm.tolist(),
    }


def compute_metrics(
    y_true: Sequence[int] | np.ndarray, probs: np.ndarray, labels: Sequence[str],
    positive_label: str, threshold: float, sources: Sequence[str] | None = None,
) -> dict[str, object]:  # fmt: skip
    """Accuracy, balanced accuracy, precision/recall/F1 of the positive class, ROC-AUC, log loss,
    ECE and the confusion matrix, overall and (with ``sources``) per source tag, which shows
    whether a model is good at hotdogs or only at one site's photos. A figure with nothing to
    count is None, not a misleading 0. Plain Python throughout, ready for ``json.dump``.
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
    if not y.size:
        raise ValueError("no examples to measure")
    pos = labels.index(positive_label)
    y_pred = predict_labels(p, labels, positive_label, threshold)
    shared = {"labels": labels, "positive_label": positive_label, "threshold": float(threshold)}
    result = {**_metrics(y, p, y_pred, pos, len(labels), threshold), **shared}
    if sources is not None:
        tags = np.asarray(list(sources), dtype=object)
        if tags.size != y.size:
            raise ValueError(f"got {tags.size} source tags for {y.size} examples")
        result["per_source"] = {
            str(tag): {**_metrics(y[m], p[m], y_pred[m], pos, len(labels), threshold), **shared}
            for tag in sorted(set(tags.tolist())) for m in [tags == tag]
        }  # fmt: skip
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


# --- calibration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Platt:
    a: float
    b: float

    def apply(self, p_pos: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(p_pos) + self.b)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return np.log(p / (1 - p))


def fit_platt(is_positive: np.ndarray, p_pos: np.ndarray) -> Platt:
    """Maximum-likelihood ``a`` and ``b`` (scikit-learn's logistic regression, no penalty)."""
    fit = LogisticRegression(C=np.inf).fit(_logit(p_pos)[:, None], np.asarray(is_positive, int))
    return Platt(a=float(fit.coef_[0, 0]), b=float(fit.intercept_[0]))


def fold_into_dense(kernel: np.ndarray, bias: np.ndarray, pos: int, platt: Platt):
    """New (kernel, bias) of a two-class softmax Dense layer with ``platt`` built in.

    P(pos) = sigmoid(z_pos - z_neg); scaling both logits by ``a`` and moving them ``b/2``
    apart turns that difference into ``a * (z_pos - z_neg) + b``.
    """
    if kernel.shape[-1] != 2:
        raise ValueError("Platt scaling folds only into a two-class head")
    shift = np.where(np.arange(2) == pos, platt.b / 2, -platt.b / 2)
    return (kernel * platt.a).astype(kernel.dtype), (bias * platt.a + shift).astype(bias.dtype)


def expected_calibration_error(
    is_positive: np.ndarray, p_pos: np.ndarray, threshold: float = 0.5, bins: int = ECE_BINS
) -> float:
    """ECE of the number the bot shows: the verdict's probability against its hit rate.

    The shown confidence is ``p`` for "hotdog" and ``1 - p`` otherwise, in equal-width bins
    over [0.5, 1] (a confidence below 0.5 falls in the first bin).
    """
    y = np.asarray(is_positive, bool)
    p = np.asarray(p_pos, np.float64)
    says_pos = says_positive(p, threshold)
    confidence = np.where(says_pos, p, 1 - p)
    correct = says_pos == y
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def calibrate_classifier(classifier, val_probs: np.ndarray, y_val: np.ndarray, pos: int):
    """Fit Platt on val, fold it into the classifier's output layer; (new val probs, record)."""
    is_pos = np.asarray(y_val) == pos
    platt = fit_platt(is_pos, val_probs[:, pos])
    dense = classifier.get_layer(OUTPUT_NAME)
    kernel, bias = (np.asarray(w) for w in dense.get_weights())
    dense.set_weights(list(fold_into_dense(kernel, bias, pos, platt)))
    p_new = platt.apply(val_probs[:, pos])
    probs = np.stack([1 - p_new, p_new] if pos == 1 else [p_new, 1 - p_new], axis=1)
    record = {
        "method": "Platt scaling on val, folded into the output layer",
        "a": platt.a,
        "b": platt.b,
        "val_ece_before": expected_calibration_error(is_pos, val_probs[:, pos]),
        "val_ece_after": expected_calibration_error(is_pos, p_new),
        "threshold_rule": (
            f"0.5 on P(positive) after Platt scaling (a={platt.a:.4g}, b={platt.b:.4g}) fitted "
            "on the validation set and folded into the output layer"
        ),
    }
    print(f"calibration: Platt a={platt.a:.4f} b={platt.b:.4f}; val ECE "
          f"{record['val_ece_before']:.4f} -> {record['val_ece_after']:.4f}")
    return probs, record
