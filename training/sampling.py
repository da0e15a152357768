"""How much each training photo counts: classes balanced, big sources damped.

The training folder is about one quarter hot dogs, and a few large sources (dtu, hse,
kaggle-yashvrdnjain, imagenet1k: mostly not food) hold as many negatives as all the food
sources together. Weighting each photo by ``1 / n_group ** power`` (a group is one class of one
source) and then scaling every class to the same total keeps the classes equal and lets a
source of 150 food photos count for more than a fifth of a source of 950 room and pet photos,
without throwing any photo away. ``power=0`` is plain class balancing; ``power=1`` gives every
source of a class the same total weight.

Samples drawn for calibration and checks are stratified the same way, by class and source.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from nothotdog.contract.dataset import Example

DEFAULT_SOURCE_POWER = 0.5


def example_weights(examples: Sequence[Example], power: float = DEFAULT_SOURCE_POWER) -> np.ndarray:
    """One weight per example, mean 1, every class summing to the same total."""
    if not examples:
        return np.zeros(0, np.float32)
    groups = Counter((e.label, e.source) for e in examples)
    w = np.array([groups[(e.label, e.source)] ** -power for e in examples], np.float64)
    labels = np.array([e.label for e in examples])
    classes = np.unique(labels)
    for c in classes:
        w[labels == c] /= w[labels == c].sum()
    return (w * len(examples) / len(classes)).astype(np.float32)


def source_shares(examples: Sequence[Example], weights: np.ndarray) -> dict[str, float]:
    """Each (class, source) group's share of the total weight: what the run records."""
    totals: Counter[str] = Counter()
    for e, w in zip(examples, weights, strict=True):
        totals[f"{e.label}:{e.source}"] += float(w)
    whole = sum(totals.values()) or 1.0
    return {k: round(v / whole, 4) for k, v in sorted(totals.items())}


def stratified_sample(examples: Sequence[Example], n: int, seed: int = 0) -> list[Example]:
    """``n`` examples in proportion to each (class, source) group, so no class or source is left
    out the way "the first n files" would leave them out. ``n <= 0`` means all."""
    if n <= 0 or n >= len(examples):
        return list(examples)
    groups: dict[tuple[int, str], list[Example]] = defaultdict(list)
    for example in examples:
        groups[(example.label, example.source)].append(example)
    keys = sorted(groups)
    shares = {k: n * len(groups[k]) / len(examples) for k in keys}
    quota = {k: int(shares[k]) for k in keys}
    # Largest remainder: the seats left go to the groups that lost most to rounding down.
    by_loss = sorted(keys, key=lambda k: shares[k] - quota[k], reverse=True)
    for k in by_loss[: n - sum(quota.values())]:
        quota[k] += 1
    rng = random.Random(seed)
    picked = [e for k in keys for e in rng.sample(groups[k], quota[k])]
    return sorted(picked, key=lambda e: (e.label, str(e.path)))
