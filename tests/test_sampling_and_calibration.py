"""Per-source sampling weights and Platt calibration folded into the head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nothotdog.contract.dataset import Example
from nothotdog.training.features import example_weights
from nothotdog.training.metrics import (
    Platt,
    expected_calibration_error,
    fit_platt,
    fold_into_dense,
)


def examples(groups: dict[tuple[int, str], int]) -> list[Example]:
    return [
        Example(Path(f"{source}__{i}.jpg"), label, source)
        for (label, source), n in groups.items()
        for i in range(n)
    ]


def test_weights_balance_classes_and_damp_big_sources():
    ex = examples({(0, "web"): 100, (1, "rooms"): 900, (1, "tacos"): 100})
    w = example_weights(ex, power=0.5)
    labels = np.array([e.label for e in ex])
    assert w.mean() == pytest.approx(1.0)
    assert w[labels == 0].sum() == pytest.approx(w[labels == 1].sum())
    rooms = sum(w[i] for i, e in enumerate(ex) if e.source == "rooms")
    tacos = sum(w[i] for i, e in enumerate(ex) if e.source == "tacos")
    # 9x the photos, but only sqrt(9) = 3x the weight.
    assert rooms / tacos == pytest.approx(3.0, rel=1e-4)


def test_grouped_sources_weigh_as_one_source():
    ex = examples({(0, "web"): 100, (1, "rooms"): 400, (1, "pizza"): 50, (1, "tacos"): 50})
    w = example_weights(ex, power=0.5, grouped=("pizza", "tacos"))

    def total(source: str) -> float:
        return sum(w[i] for i, e in enumerate(ex) if e.source == source)

    # One group of 100 against 400 rooms: sqrt(4) = 2x, split evenly between its two sources.
    assert total("rooms") / (total("pizza") + total("tacos")) == pytest.approx(2.0, rel=1e-4)
    assert total("pizza") == pytest.approx(total("tacos"))
    # Apart, each of the two would weigh like a source of 50: together sqrt(2) times more.
    apart = example_weights(ex, power=0.5)
    ratio = sum(apart[i] for i, e in enumerate(ex) if e.source in ("pizza", "tacos")) / sum(
        apart[i] for i, e in enumerate(ex) if e.source == "rooms")
    assert ratio == pytest.approx(2 * 50**0.5 / 400**0.5, rel=1e-4)


def test_power_zero_is_plain_class_balance():
    ex = examples({(0, "a"): 10, (1, "b"): 30, (1, "c"): 10})
    w = example_weights(ex, power=0.0)
    assert {round(float(v), 6) for v in w[10:]} == {0.625}
    assert w[:10] == pytest.approx(2.5)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("pos", [0, 1])
def test_platt_folded_into_the_dense_layer_is_exact(pos: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8))
    kernel, bias = rng.normal(size=(8, 2)), rng.normal(size=2)
    platt = Platt(a=0.6, b=-0.4)
    before = softmax(x @ kernel + bias)[:, pos]
    k2, b2 = fold_into_dense(kernel, bias, pos, platt)
    after = softmax(x @ k2 + b2)[:, pos]
    np.testing.assert_allclose(after, platt.apply(before), rtol=1e-9, atol=1e-12)


def test_platt_fit_fixes_an_overconfident_model_and_lowers_ece():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.05, 0.95, 4000)  # the real probability of "hotdog"
    y = rng.uniform(size=truth.size) < truth
    logit = np.log(truth / (1 - truth))
    overconfident = 1 / (1 + np.exp(-(3 * logit + 1)))
    platt = fit_platt(y, overconfident)
    assert platt.a == pytest.approx(1 / 3, rel=0.15)
    before = expected_calibration_error(y, overconfident)
    after = expected_calibration_error(y, platt.apply(overconfident))
    assert after < before / 2


def test_ece_is_zero_when_confidence_matches_hit_rate():
    y = np.array([True] * 8 + [False] * 2 + [False] * 8 + [True] * 2)
    p = np.array([0.8] * 10 + [0.2] * 10)  # says 80% and is right 80% of the time
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
