"""What a run folder says about its model, and how that goes into the ONNX file's metadata.

The run's facts are read without TensorFlow (contract.layout). Keys come from contract.MetaKey
and the shape from ModelSpec.to_metadata, so the bot's ModelSpec.from_metadata reads back
exactly what was written here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx

from nothotdog.contract import MetaKey, ModelSpec
from nothotdog.contract.layout import MODEL_FILE, RunFacts, RunFolderError, read_run_facts

FLOAT32 = "none (float32)"
# What every exported file carries; the tests and the CLI check these.
REQUIRED_KEYS: tuple[str, ...] = (
    MetaKey.LABELS, MetaKey.POSITIVE_LABEL, MetaKey.THRESHOLD, MetaKey.THRESHOLD_RULE,
    MetaKey.INPUT_SIZE, MetaKey.INPUT_LAYOUT, MetaKey.RESIZE, MetaKey.MODEL_NAME,
    MetaKey.MODEL_VERSION, MetaKey.CREATED, MetaKey.METRICS, MetaKey.WEIGHTS_SOURCE,
    MetaKey.DATA_SUMMARY, MetaKey.WEIGHTS_SHA256, MetaKey.QUANTIZATION,
)  # fmt: skip


class SourceError(RunFolderError):
    """The run folder or model path cannot be exported; the message says why."""


@dataclass(frozen=True, kw_only=True)
class TrainedRun(RunFacts):
    """The facts export copies into the ONNX metadata; contract defaults for a bare .keras."""

    model_path: Path
    run_dir: Path | None

    @property
    def name(self) -> str:
        """A short tag for the model version: the run folder, else the file's stem."""
        return self.run_dir.name if self.run_dir is not None else self.model_path.stem


def read_run(path: str | Path) -> TrainedRun:
    """Accept a run folder (model.keras + JSON files) or a bare .keras file."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".keras":
            raise SourceError(f"{path} is not a .keras file")
        return TrainedRun(model_path=path, run_dir=None)
    if not path.is_dir():
        raise SourceError(f"{path} is neither a run folder nor a .keras file")
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise SourceError(f"run folder {path} has no {MODEL_FILE}")
    return TrainedRun(model_path=model_path, run_dir=path, **vars(read_run_facts(path)))


def weights_sha256(weights: list[np.ndarray]) -> str:
    """SHA-256 over the float32 weights in model order (C-order, little-endian bytes): the
    numbers rather than the .keras zip, so two files with the same weights (re-saved, other
    timestamps) carry the same hash."""
    digest = hashlib.sha256()
    for weight in weights:
        array = np.ascontiguousarray(weight, dtype="<f4")
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def build_spec(
    run: TrainedRun, *, name: str, weights_sha: str, version: str | None = None,
    created: str | None = None, quantization: str = FLOAT32,
) -> ModelSpec:  # fmt: skip
    """The full spec for one exported file; unknown facts are said to be unknown, not omitted."""
    extra = {
        MetaKey.THRESHOLD_RULE: run.threshold_rule or "default (no threshold tuned)",
        MetaKey.CREATED: created or datetime.now(UTC).replace(microsecond=0).isoformat(),
        MetaKey.WEIGHTS_SOURCE: run.weights_source or "unknown",
        MetaKey.DATA_SUMMARY: json.dumps(run.data_summary or {}, sort_keys=True),
        MetaKey.WEIGHTS_SHA256: weights_sha,
        MetaKey.QUANTIZATION: quantization,
    }
    return ModelSpec(tuple(run.labels), run.positive_label, run.threshold, name=name,
                     version=version or f"{run.name}-{weights_sha[:12]}",
                     metrics=dict(run.val_metrics), extra=extra,
                     display=dict(run.display))  # fmt: skip


def with_quantization(spec: ModelSpec, quantization: str) -> ModelSpec:
    """The int8 file's spec: everything as the float32 one, except how it was quantized."""
    return dataclasses.replace(spec, extra={**spec.extra, MetaKey.QUANTIZATION: quantization})


def write_metadata(proto: onnx.ModelProto, spec: ModelSpec) -> None:
    """Replace whatever metadata the proto had (quantization tools may copy or drop it)."""
    meta = spec.to_metadata()
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise ValueError(f"metadata lacks {missing}")
    onnx.helper.set_model_props(proto, dict(sorted(meta.items())))
    proto.doc_string = (
        f"{spec.name} {spec.version}: uint8 RGB NHWC image in, class probabilities out "
        f"({', '.join(spec.labels)}); preprocessing is inside the graph."
    )


def read_metadata(path: str | Path) -> dict[str, str]:
    """Metadata without loading the weights' session, for checks and summaries."""
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
