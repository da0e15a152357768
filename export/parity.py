"""Keras vs ONNX on the same pixels: the proof that conversion lost nothing.

Real photos when there are some (``--check``); generated images otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nothotdog.contract import INPUT_NAME, INPUT_SIZE, ModelSpec
from nothotdog.export.settings import TOLERANCE

BATCH = 16


def generated_images(n: int = 32, seed: int = 0, size: int = INPUT_SIZE) -> np.ndarray:
    """Stand-ins for photos when no folder is given: flat colours (including pure black and
    white), smooth gradients and noise, so both saturated and typical pixels are exercised."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    for i in range(n):
        kind = i % 4
        if kind == 0:
            colour = (0, 0, 0) if i == 0 else (255, 255, 255) if i == 4 else rng.integers(0, 256, 3)
            out[i] = np.asarray(colour, dtype=np.uint8)
        elif kind == 1:
            lo, hi = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            grad = ramp[:, None, None] if i % 8 == 1 else ramp[None, :, None]
            out[i] = np.clip(lo + (hi.astype(np.float32) - lo) * grad, 0, 255).astype(np.uint8)
        elif kind == 2:
            out[i] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        else:
            base = rng.integers(0, 256, 3).astype(np.float32)
            noise = rng.normal(0.0, 30.0, (size, size, 3))
            out[i] = np.clip(base + noise, 0, 255).astype(np.uint8)
    return out


class ParityError(RuntimeError):
    """ONNX and Keras disagree by more than the tolerance, or on some image's label."""


@dataclass
class ParityReport:
    images: int
    source: str  # the folder sampled, or "generated"
    max_abs_diff: float
    mean_abs_diff: float
    label_mismatches: int
    tolerance: float
    worst: list[dict[str, Any]] = field(default_factory=list)  # the images that differ most

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.label_mismatches == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def keras_probabilities(model: Any, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """``model``: a keras.Model taking the contract's uint8 input."""
    outputs = [
        np.asarray(model.predict_on_batch(images[i : i + batch]), dtype=np.float32)
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(outputs)


def onnx_probabilities(session: Any, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """``session``: an onnxruntime.InferenceSession taking the contract's uint8 input."""
    outputs = [
        session.run(None, {INPUT_NAME: np.ascontiguousarray(images[i : i + batch])})[0]
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(outputs)


def compare(
    reference: np.ndarray, candidate: np.ndarray, spec: ModelSpec, source: str,
    names: list[str] | None = None, tolerance: float = TOLERANCE,
) -> ParityReport:  # fmt: skip
    """Probabilities and labels (by the spec's threshold) of two models on the same images."""
    if reference.shape != candidate.shape:
        raise ParityError(f"output shapes differ: Keras {reference.shape}, ONNX {candidate.shape}")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64)).max(axis=1)
    ref_labels = [spec.verdict(row)[0] for row in reference]
    cand_labels = [spec.verdict(row)[0] for row in candidate]
    mismatched = [i for i, (a, b) in enumerate(zip(ref_labels, cand_labels, strict=True)) if a != b]
    shown = set(np.argsort(-diff)[:3].tolist()) | set(mismatched[:5])
    order = sorted(shown, key=lambda i: -diff[i])
    worst = [
        {
            "image": names[i] if names else i,
            "abs_diff": float(diff[i]),
            "keras": ref_labels[i],
            "onnx": cand_labels[i],
        }
        for i in order
    ]
    return ParityReport(
        images=len(reference),
        source=source,
        max_abs_diff=float(diff.max(initial=0.0)),
        mean_abs_diff=float(diff.mean()) if len(diff) else 0.0,
        label_mismatches=len(mismatched),
        tolerance=tolerance,
        worst=worst,
    )


def check_parity(
    model: Any, session: Any, images: np.ndarray, spec: ModelSpec, source: str,
    names: list[str] | None = None, tolerance: float = TOLERANCE,
) -> ParityReport:  # fmt: skip
    """Run both and raise ParityError, with the worst images named, when they disagree."""
    if len(images) == 0:
        raise ParityError("no images to check parity on")
    reference = keras_probabilities(model, images)
    report = compare(reference, onnx_probabilities(session, images), spec, source, names,
                     tolerance)  # fmt: skip
    if not report.ok:
        raise ParityError(
            f"ONNX does not match Keras on {source} ({report.images} images): max |Δp| "
            f"{report.max_abs_diff:.3g} (limit {tolerance:g}), {report.label_mismatches} "
            f"label(s) differ; worst: {report.worst}"
        )
    return report
