"""The contract and the run's facts, written into the ONNX file's ``metadata_props``.

Keys come from contract.MetaKey and the shape from ModelSpec.to_metadata, so the bot's
ModelSpec.from_metadata reads back exactly what was written here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx

from nothotdog.contract import MetaKey, ModelSpec
from nothotdog.export.source import TrainedRun

FLOAT32 = "none (float32)"

# What the issue asks every exported file to carry; the tests and the CLI check these.
REQUIRED_KEYS: tuple[str, ...] = (
    MetaKey.LABELS,
    MetaKey.POSITIVE_LABEL,
    MetaKey.THRESHOLD,
    MetaKey.THRESHOLD_RULE,
    MetaKey.INPUT_SIZE,
    MetaKey.INPUT_LAYOUT,
    MetaKey.RESIZE,
    MetaKey.MODEL_NAME,
    MetaKey.MODEL_VERSION,
    MetaKey.CREATED,
    MetaKey.METRICS,
    MetaKey.WEIGHTS_SOURCE,
    MetaKey.DATA_SUMMARY,
    MetaKey.WEIGHTS_SHA256,
    MetaKey.QUANTIZATION,
)


def weights_sha256(weights: list[np.ndarray]) -> str:
    """SHA-256 over the float32 weights in model order (C-order, little-endian bytes).

    Hashing the numbers rather than the .keras zip makes it independent of the container
    (timestamps, re-saves), so two files from the same weights carry the same hash.
    """
    digest = hashlib.sha256()
    for weight in weights:
        array = np.ascontiguousarray(weight, dtype="<f4")
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def build_spec(
    run: TrainedRun,
    *,
    name: str,
    weights_sha: str,
    version: str | None = None,
    created: str | None = None,
    quantization: str = FLOAT32,
) -> ModelSpec:
    """The full spec for one exported file; unknown facts are said to be unknown, not omitted."""
    extra = {
        MetaKey.THRESHOLD_RULE: run.threshold_rule or "default (no threshold tuned)",
        MetaKey.CREATED: created or utc_now(),
        MetaKey.WEIGHTS_SOURCE: run.weights_source or "unknown",
        MetaKey.DATA_SUMMARY: json.dumps(run.data_summary or {}, sort_keys=True),
        MetaKey.WEIGHTS_SHA256: weights_sha,
        MetaKey.QUANTIZATION: quantization,
    }
    return ModelSpec(
        labels=tuple(run.labels),
        positive_label=run.positive_label,
        threshold=run.threshold,
        name=name,
        version=version or f"{run.name}-{weights_sha[:12]}",
        metrics=dict(run.val_metrics),
        extra=extra,
    )


def with_quantization(spec: ModelSpec, quantization: str) -> ModelSpec:
    """The int8 file's spec: everything as the float32 one, except how it was quantized."""
    extra = dict(spec.extra)
    extra[MetaKey.QUANTIZATION] = quantization
    return dataclasses.replace(spec, extra=extra)


def write_metadata(proto: onnx.ModelProto, spec: ModelSpec) -> None:
    """Replace whatever metadata the proto had (quantization tools may copy or drop it)."""
    meta = spec.to_metadata()
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise ValueError(f"metadata lacks {missing}")
    del proto.metadata_props[:]
    for key in sorted(meta):
        set_metadata(proto, key, meta[key])
    proto.doc_string = (
        f"{spec.name} {spec.version}: uint8 RGB NHWC image in, class probabilities out "
        f"({', '.join(spec.labels)}); preprocessing is inside the graph."
    )


def set_metadata(proto: onnx.ModelProto, key: str, value: str) -> None:
    """Set one key, leaving every other one (and its order) as it was: the one way this
    project writes a metadata entry (export, the heatmap retrofit, evaluation's --stamp)."""
    for prop in proto.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    prop = proto.metadata_props.add()
    prop.key, prop.value = key, value


def read_metadata(path: str | Path) -> dict[str, str]:
    """Metadata without loading the weights' session, for checks and summaries."""
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
