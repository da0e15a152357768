"""Probabilities that mean what they say: Platt scaling fitted on val, folded into the head.

The bot shows the probability of its verdict. With a tuned threshold (say 0.537) a verdict of
"not hotdog" could come with "48%". Platt scaling fits ``P = sigmoid(a * logit + b)`` to the
validation labels; because the head is one Dense layer and a two-class softmax, the same map is
exact when folded into that layer's weights, so the exported graph outputs calibrated
probabilities, the threshold is 0.5, and the shown number is never below 50%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nothotdog.contract.spec import says_positive

ECE_BINS = 15
_EPS = 1e-7


@dataclass(frozen=True)
class Platt:
    a: float
    b: float

    def apply(self, p_pos: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(p_pos) + self.b)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def fit_platt(is_positive: np.ndarray, p_pos: np.ndarray) -> Platt:
    """Maximum-likelihood ``a`` and ``b`` (scikit-learn's logistic regression, no penalty)."""
    from sklearn.linear_model import LogisticRegression

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
    from nothotdog.contract import OUTPUT_NAME

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
