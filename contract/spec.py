"""Labels, input layout, threshold and ONNX metadata keys: one place for each fact."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Class order is the order of the model's output columns (alphabetical, as folder loaders sort).
LABELS: tuple[str, ...] = ("hot_dog", "not_hot_dog")
POSITIVE_LABEL = "hot_dog"
# The bot says "hotdog" when P(positive) >= threshold. 0.5 until a trained model carries its own.
DEFAULT_THRESHOLD = 0.5
# What the bot says for each label of a file without display texts (every file before they
# existed was a hot-dog model, and its users know these words).
HOTDOG_DISPLAY: Mapping[str, str] = {"hot_dog": "🌭 Hotdog!", "not_hot_dog": "🚫 Not hotdog"}


def readable(label: str) -> str:
    """A folder name as words: ``hot_dog`` -> "Hot dog", ``red`` -> "Red"."""
    words = label.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else label


def default_display(labels: Sequence[str], positive: str) -> dict[str, str]:
    """The text the bot shows for each label when nobody chose one. Two classes read as
    "X or not X" ("✅ Cat!" / "🚫 Not cat"); more classes, each its readable folder name."""
    if set(labels) == set(HOTDOG_DISPLAY):
        return dict(HOTDOG_DISPLAY)
    if len(labels) == 2:
        name = readable(positive)
        return {label: f"✅ {name}!" if label == positive else f"🚫 Not {name.lower()}"
                for label in labels}  # fmt: skip
    return {label: readable(label) for label in labels}


def says_positive(p_positive: np.ndarray, threshold: float) -> np.ndarray:
    """The two-class decision rule, for ``ModelSpec.decide`` and every figure that needs it
    (calibration error, the ROC plot's operating point), so an edge case can't differ."""
    return np.asarray(p_positive, dtype=np.float64) >= threshold

# Clients send uint8 RGB NHWC; the graph itself casts, flips to BGR and subtracts this mean
# (Keras's VGG16 "caffe" preprocessing), so no client can get the normalisation wrong.
INPUT_SIZE = 224
IMAGENET_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)
RESIZE_METHOD = "bilinear"  # whole image squashed to INPUT_SIZE x INPUT_SIZE, see contract.imaging

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
# Optional second output: the class activation map of the positive class (see contract.heatmap).
HEATMAP_NAME = "heatmap"
# Optional output: the pooled features the dense head reads, float32 [batch, channels] (for
# VGG16, 512), which /teach compares between photos (bot.taught).
FEATURES_NAME = "features"


class MetaKey:
    """Names of the ONNX ``metadata_props`` that export writes and the bot reads."""

    LABELS = "nothotdog.labels"  # JSON list
    POSITIVE_LABEL = "nothotdog.positive_label"
    THRESHOLD = "nothotdog.threshold"
    THRESHOLD_RULE = "nothotdog.threshold_rule"
    INPUT_SIZE = "nothotdog.input_size"
    INPUT_LAYOUT = "nothotdog.input_layout"
    RESIZE = "nothotdog.resize"
    MODEL_NAME = "nothotdog.model_name"
    MODEL_VERSION = "nothotdog.model_version"
    CREATED = "nothotdog.created"
    METRICS = "nothotdog.val_metrics"  # JSON object
    TEST_METRICS = "nothotdog.test_metrics"  # JSON object: the file itself, measured on test
    WEIGHTS_SOURCE = "nothotdog.backbone_weights"
    DATA_SUMMARY = "nothotdog.training_data"  # JSON object
    WEIGHTS_SHA256 = "nothotdog.weights_sha256"
    QUANTIZATION = "nothotdog.quantization"
    HEATMAP = "nothotdog.heatmap"  # JSON object; present when the file has the heatmap output
    DISPLAY = "nothotdog.display"  # JSON object: label -> the text the bot shows for it
    FEATURES = "nothotdog.features"  # JSON object; present when the file has the features output


INPUT_LAYOUT = "NHWC uint8 RGB"


@dataclass(frozen=True)
class ModelSpec:
    """What a client needs to know about a model; defaults are the contract above."""

    labels: tuple[str, ...] = LABELS
    positive_label: str = POSITIVE_LABEL
    threshold: float = DEFAULT_THRESHOLD
    input_size: int = INPUT_SIZE
    resize: str = RESIZE_METHOD
    name: str = "nothotdog"
    version: str = "unversioned"
    metrics: Mapping[str, object] = field(default_factory=dict)
    test_metrics: Mapping[str, object] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)
    display: Mapping[str, str] = field(default_factory=dict)  # label -> text; missing: default

    @property
    def positive_index(self) -> int:
        return self.labels.index(self.positive_label)

    @property
    def two_class(self) -> bool:
        """Whether the threshold decides (two classes) or the top label wins (more)."""
        return len(self.labels) == 2

    def display_text(self, label: str) -> str:
        """What the bot says for ``label``: the file's text, else the readable default."""
        return self.display.get(label) or default_display(self.labels, self.positive_label)[label]

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Class index per row of ``[n, classes]`` probabilities: the one decision rule, used by
        the bot's verdicts and by every metric, so no figure describes a model nobody ships.

        Two classes: the positive label iff P(positive) >= threshold; more: argmax."""
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.labels):
            raise ValueError(f"probs must be [n, {len(self.labels)}], got shape {p.shape}")
        if len(self.labels) == 2:
            pos = self.positive_index
            return np.where(says_positive(p[:, pos], self.threshold), pos, 1 - pos).astype(np.int64)
        return np.argmax(p, axis=1).astype(np.int64)

    def verdict(self, probabilities: Sequence[float]) -> tuple[str, float]:
        """Label and its probability (for two classes, 1 - P(positive) when not positive)."""
        index = int(self.decide(np.asarray(probabilities)[None])[0])
        if len(self.labels) == 2 and index != self.positive_index:
            return self.labels[index], 1.0 - float(probabilities[self.positive_index])
        return self.labels[index], float(probabilities[index])

    def to_metadata(self) -> dict[str, str]:
        meta = {
            **self.extra,
            MetaKey.LABELS: json.dumps(list(self.labels)),
            MetaKey.POSITIVE_LABEL: self.positive_label,
            MetaKey.THRESHOLD: repr(float(self.threshold)),
            MetaKey.INPUT_SIZE: str(self.input_size),
            MetaKey.INPUT_LAYOUT: INPUT_LAYOUT,
            MetaKey.RESIZE: self.resize,
            MetaKey.MODEL_NAME: self.name,
            MetaKey.MODEL_VERSION: self.version,
            MetaKey.METRICS: json.dumps(dict(self.metrics), sort_keys=True),
        }
        if self.display:
            meta[MetaKey.DISPLAY] = json.dumps(dict(self.display), ensure_ascii=False)
        if self.test_metrics:
            meta[MetaKey.TEST_METRICS] = json.dumps(dict(self.test_metrics), sort_keys=True)
        return meta

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> ModelSpec:
        """Read what a model file carries; anything missing falls back to the contract."""
        labels = tuple(json.loads(meta[MetaKey.LABELS])) if MetaKey.LABELS in meta else LABELS
        positive = meta.get(MetaKey.POSITIVE_LABEL, POSITIVE_LABEL)
        if positive not in labels:
            raise ValueError(f"positive label {positive!r} is not one of {labels}")
        known = {
            MetaKey.LABELS, MetaKey.POSITIVE_LABEL, MetaKey.THRESHOLD, MetaKey.INPUT_SIZE,
            MetaKey.RESIZE, MetaKey.MODEL_NAME, MetaKey.MODEL_VERSION, MetaKey.METRICS,
            MetaKey.TEST_METRICS, MetaKey.DISPLAY,
        }
        display = json.loads(meta.get(MetaKey.DISPLAY, "{}"))
        if not isinstance(display, dict) or set(display) - set(labels):
            raise ValueError(f"display texts {display!r} must be an object keyed by {labels}")
        return cls(
            labels=labels,
            positive_label=positive,
            threshold=float(meta.get(MetaKey.THRESHOLD, DEFAULT_THRESHOLD)),
            input_size=int(meta.get(MetaKey.INPUT_SIZE, INPUT_SIZE)),
            resize=meta.get(MetaKey.RESIZE, RESIZE_METHOD),
            name=meta.get(MetaKey.MODEL_NAME, "nothotdog"),
            version=meta.get(MetaKey.MODEL_VERSION, "unversioned"),
            metrics=json.loads(meta[MetaKey.METRICS]) if MetaKey.METRICS in meta else {},
            test_metrics=json.loads(meta.get(MetaKey.TEST_METRICS, "{}")),
            extra={k: v for k, v in meta.items() if k not in known},
            display={str(k): str(v) for k, v in display.items()},
        )
