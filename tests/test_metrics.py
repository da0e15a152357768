"""training.metrics on hand-checkable cases, plus cross-checks against the contract."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from nothotdog.contract import ModelSpec
from nothotdog.training.metrics import choose_threshold, compute_metrics, roc_auc

LABELS = ["hot_dog", "not_hot_dog"]  # hot_dog = 0 is the positive class
HOT, NOT = 0, 1


def two_class(p_hot: list[float]) -> np.ndarray:
    p = np.asarray(p_hot, dtype=np.float64)
    return np.stack([p, 1.0 - p], axis=1)


def metrics(y, p_hot, threshold=0.5, sources=None):
    return compute_metrics(y, two_class(p_hot), LABELS, "hot_dog", threshold, sources)


def test_perfect_predictions():
    m = metrics([HOT, HOT, NOT, NOT], [0.9, 0.8, 0.2, 0.1])
    assert m["n"] == 4
    for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc"):
        assert m[key] == 1.0, key
    assert m["confusion_matrix"] == [[2, 0], [0, 2]]
    assert m["log_loss"] == pytest.approx(-(2 * math.log(0.9) + 2 * math.log(0.8)) / 4)
    assert m["labels"] == LABELS and m["threshold"] == 0.5
    assert "per_source" not in m


def test_all_wrong():
    m = metrics([HOT, HOT, NOT, NOT], [0.1, 0.2, 0.8, 0.9])
    assert m["accuracy"] == 0.0 and m["balanced_accuracy"] == 0.0
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["roc_auc"] == 0.0
    assert m["confusion_matrix"] == [[0, 2], [2, 0]]


def test_mixed_case_checked_by_hand():
    # true hot: 0.9 (TP), 0.4 (FN), 0.6 (TP); true not: 0.7 (FP), 0.2 (TN)
    m = metrics([HOT, HOT, HOT, NOT, NOT], [0.9, 0.4, 0.6, 0.7, 0.2])
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # pairs (pos, neg) ranked right: 0.9>0.7, 0.9>0.2, 0.4>0.2, 0.6>0.2 -> 4 of 6
    assert m["roc_auc"] == pytest.approx(4 / 6)
    expected = -np.mean(np.log([0.9, 0.4, 0.6, 0.3, 0.8]))
    assert m["log_loss"] == pytest.approx(expected)


def test_threshold_moves_predictions_and_equal_counts_as_positive():
    y, p = [HOT, HOT, NOT, NOT], [0.9, 0.4, 0.4, 0.1]
    assert metrics(y, p, 0.5)["confusion_matrix"] == [[1, 1], [0, 2]]
    assert metrics(y, p, 0.4)["confusion_matrix"] == [[2, 0], [1, 1]]  # p == t is positive
    assert metrics(y, p, 0.95)["confusion_matrix"] == [[0, 2], [0, 2]]
    assert metrics(y, p, 0.95)["precision"] is None  # nothing predicted positive
    assert metrics(y, p, 0.95)["f1"] == 0.0
    # ROC-AUC and log loss do not depend on the threshold
    assert metrics(y, p, 0.5)["roc_auc"] == metrics(y, p, 0.95)["roc_auc"]
    assert metrics(y, p, 0.5)["log_loss"] == metrics(y, p, 0.95)["log_loss"]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.62])
@pytest.mark.parametrize("labels", [LABELS, LABELS[::-1]])
def test_predictions_agree_with_the_bots_verdict(labels, threshold):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1], size=200)
    probs[:5, 0] = threshold  # exact ties at the threshold
    probs[:5, 1] = 1 - threshold
    spec = ModelSpec(labels=tuple(labels), positive_label="hot_dog", threshold=threshold)
    verdicts = [labels.index(spec.verdict(row)[0]) for row in probs]
    y = rng.integers(0, 2, size=200)
    m = compute_metrics(y, probs, labels, "hot_dog", threshold)
    expected = np.zeros((2, 2), dtype=int)
    for t, v in zip(y, verdicts, strict=True):
        expected[t, v] += 1
    assert m["confusion_matrix"] == expected.tolist()


def test_more_than_two_classes_use_argmax():
    labels = ["cat", "hot_dog", "pizza"]
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.45, 0.35], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    m = compute_metrics([0, 1, 2, 1], probs, labels, "hot_dog", threshold=0.99)
    assert m["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert m["accuracy"] == 0.75
    assert m["precision"] == 1.0 and m["recall"] == 0.5
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)


def test_per_source_split():
    y = [HOT, NOT, HOT, HOT, NOT, NOT]
    p = [0.9, 0.2, 0.3, 0.8, 0.6, 0.1]
    src = ["a", "a", "b", "b", "c", "c"]
    m = metrics(y, p, sources=src)
    per = m["per_source"]
    assert sorted(per) == ["a", "b", "c"]
    assert sum(part["n"] for part in per.values()) == m["n"] == 6
    total = np.sum([part["confusion_matrix"] for part in per.values()], axis=0)
    assert total.tolist() == m["confusion_matrix"]
    assert per["a"]["accuracy"] == 1.0 and per["a"]["roc_auc"] == 1.0
    # b holds only hotdogs: AUC is undefined, recall is defined (1 of 2 found)
    assert per["b"]["roc_auc"] is None
    assert per["b"]["recall"] == 0.5 and per["b"]["precision"] == 1.0
    # c holds only not-hotdogs: recall has nothing to count, precision is 0 of 1
    assert per["c"]["roc_auc"] is None and per["c"]["recall"] is None and per["c"]["f1"] is None
    assert per["c"]["precision"] == 0.0 and per["c"]["accuracy"] == 0.5
    for part in per.values():
        assert set(part) == set(m) - {"per_source"}


def test_one_class_overall_and_log_loss_clipped():
    m = metrics([NOT, NOT], [1.0, 0.0])  # a certain mistake on the first example
    assert m["roc_auc"] is None
    assert math.isfinite(m["log_loss"]) and m["log_loss"] == pytest.approx(-math.log(1e-7) / 2)


def test_result_is_plain_json():
    m = metrics([HOT, NOT, HOT], np.float32([0.7, 0.4, 0.2]), sources=["x", "y", "y"])
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        else:
            assert value is None or type(value) in (int, float, str), type(value)

    walk(m)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="probs"):
        compute_metrics([0, 1], np.ones((3, 2)) / 2, LABELS, "hot_dog", 0.5)
    with pytest.raises(ValueError, match="positive label"):
        compute_metrics([0, 1], np.ones((2, 2)) / 2, LABELS, "pizza", 0.5)
    with pytest.raises(ValueError, match="class indices"):
        compute_metrics([0, 2], np.ones((2, 2)) / 2, LABELS, "hot_dog", 0.5)
    with pytest.raises(ValueError, match="source tags"):
        compute_metrics([0, 1], np.ones((2, 2)) / 2, LABELS, "hot_dog", 0.5, sources=["a"])


def test_roc_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=60).astype(bool)
    s = rng.integers(0, 8, size=60) / 8.0  # many ties
    pairs = list(itertools.product(s[y], s[~y]))
    expected = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert roc_auc(y, s) == pytest.approx(expected)
    assert roc_auc(y[y], s[y]) is None  # one class: undefined, not 0.5


def test_choose_threshold_separable_prefers_half():
    t, rule = choose_threshold([True, True, False, False], [0.7, 0.8, 0.1, 0.2])
    assert t == 0.5  # 0.45 ties with 0.5 at balanced accuracy 1
    assert "balanced accuracy" in rule and rule.endswith(".") and rule.count(". ") == 0


def test_choose_threshold_moves_off_half_when_it_pays():
    t, _ = choose_threshold([True, True, False, False], [0.3, 0.35, 0.1, 0.2])
    assert t == pytest.approx(0.25)
    m = metrics([HOT, HOT, NOT, NOT], [0.3, 0.35, 0.1, 0.2], threshold=t)
    assert m["balanced_accuracy"] == 1.0


def test_choose_threshold_ties_go_toward_half():
    # sorted: .3 neg, .4 pos, .8 neg, .9 pos; .35 and .85 both give balanced accuracy .75
    t, _ = choose_threshold([False, True, False, True], [0.3, 0.4, 0.8, 0.9])
    assert t == pytest.approx(0.35)


def test_choose_threshold_balances_classes_rather_than_counting_the_majority():
    # 1 positive at 0.3 among 9 negatives at 0.05..0.45: plain accuracy would keep 0.5
    # (90%), balanced accuracy finds the positive.
    neg = [0.05, 0.1, 0.12, 0.15, 0.18, 0.2, 0.22, 0.25, 0.45]
    y = [True] + [False] * len(neg)
    t, _ = choose_threshold(y, [0.3, *neg])
    assert t == pytest.approx(0.275)
    m = metrics([HOT] + [NOT] * len(neg), [0.3, *neg], threshold=t)
    assert m["recall"] == 1.0 and m["balanced_accuracy"] == pytest.approx((1 + 8 / 9) / 2)


def test_choose_threshold_one_class_keeps_default():
    t, rule = choose_threshold([False, False, False], [0.2, 0.6, 0.9])
    assert t == 0.5 and "one class" in rule


def test_choose_threshold_length_mismatch():
    with pytest.raises(ValueError):
        choose_threshold([True, False], [0.5])
