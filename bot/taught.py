"""A chat's own labels: what a label may be, how many photos, and the classifier.

No Telegram and no database: the rules ``/teach`` enforces and the nearest class mean that
answers a taught chat's photos, shared by the bot and bench/teach.py (which measures it).

The classifier compares the model's ``features`` output (the 512 pooled block5 numbers the
dense head reads; contract.spec.FEATURES_NAME), square-rooted, by cosine similarity with the
mean of each label's examples. A dozen lines of numpy and no fit. Measured on the shipped
file through this code (bench/teach.py): hot dog / pizza / burger, 10 training photos a
label, all 176 val photos of those sources, 21 draws: 95.6% right (the first 10 photos by
name: 95.5%; worst draw 93.8%); without the square root about 94.3%; scikit-learn's logistic
regression on the same numbers 95.8% (C=1) and 96.3% (C=10). The fit is at most half a point
better, within what one draw of photos moves; the mean needs no library in the bot and no
regularisation to choose, works from 3 photos a label and changes in O(1) per photo.
The square root evens out the few large ReLU averages that otherwise dominate the cosine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

MAX_LABELS = 20  # a chat's labels
MAX_PHOTOS = 100  # a label's photos: the mean has long settled (bench/teach.py: k=40 ~ k=10)
MIN_PHOTOS = 3  # for a label to take part once taught
MIN_LABELS = 2
MAX_LABEL_CHARS = 32
# Letters and digits of any script, and single spaces, hyphens or apostrophes between them.
LABEL = re.compile(r"[^\W_]+(?:[ '\-][^\W_]+)*")

# How the similarities become a confidence: softmax(SHARPNESS * cosine). Chosen on val
# (bench/teach.py): the log loss of hot dog / pizza / burger is lowest at 40 (0.130; 0.134
# at 30, 0.137 at 50).
SHARPNESS = 40.0
# Below this cosine similarity to the closest label's mean, the answer is "not sure". Chosen
# on val: 99% of the taught dishes' photos stay above it, while a third of the photos of
# other sources fall below (bench/teach.py: 34%; nearly all of the non-food ones, imagenet1k).
NOT_SURE_BELOW = 0.68


def clean_label(text: str) -> str | None:
    """``text`` as a label (lower case, single spaces), or None if it cannot be one."""
    label = " ".join(unicodedata.normalize("NFC", text).split()).lower()
    if not 0 < len(label) <= MAX_LABEL_CHARS or not LABEL.fullmatch(label):
        return None
    return label


@dataclass(frozen=True)
class Answer:
    """A taught chat's answer for one photo."""

    label: str  # the closest label
    confidence: float  # its share of softmax(SHARPNESS * cosine) over the labels
    similarity: float  # cosine similarity to its mean
    sure: bool  # similarity >= NOT_SURE_BELOW


def ready(counts: Mapping[str, int]) -> list[str]:
    """The labels with enough photos to take part, in the order given."""
    return [label for label, n in counts.items() if n >= MIN_PHOTOS]


def unit(rows: np.ndarray) -> np.ndarray:
    """Features square-rooted, then each row scaled to length 1 (a zero row stays zero)."""
    rows = np.sqrt(np.maximum(np.asarray(rows, np.float64), 0.0))
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


class NearestMean:
    """Each label's examples averaged (as unit vectors); a photo goes to the closest mean."""

    def __init__(self, examples: Mapping[str, np.ndarray]) -> None:
        if len(examples) < MIN_LABELS:
            raise ValueError(f"need at least {MIN_LABELS} labels, got {len(examples)}")
        self.labels = tuple(examples)
        means = np.stack([unit(rows).mean(axis=0) for rows in examples.values()])
        self.means = means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)

    def classify(self, features: np.ndarray) -> Answer:
        similarity = self.means @ unit(np.asarray(features).reshape(-1))
        logits = SHARPNESS * (similarity - similarity.max())
        shares = np.exp(logits) / np.exp(logits).sum()
        best = int(np.argmax(similarity))
        return Answer(self.labels[best], float(shares[best]), float(similarity[best]),
                      sure=bool(similarity[best] >= NOT_SURE_BELOW))  # fmt: skip
