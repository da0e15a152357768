"""float32 and int8 side by side on held-out photos, and the accuracy gate int8 must pass.

Both files are loaded the way the bot loads them (contract.runtime.load_onnx) and timed in one
run, so their figures are comparable; each model's verdict uses its own metadata's threshold.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nothotdog.contract import MetaKey
from nothotdog.contract.dataset import Example
from nothotdog.contract.runtime import OnnxModel, load_onnx
from nothotdog.export.parity import generated_images
from nothotdog.export.settings import DEFAULT_MAX_DROP
from nothotdog.training.int8 import QuantizationError, batches
from nothotdog.training.metrics import accuracy


class AccuracyGateError(QuantizationError):
    """int8 lost more accuracy than allowed; the int8 file must not ship."""


@dataclass
class Score:
    path: str
    size_bytes: int
    quantization: str
    accuracy: float
    errors: int
    ms_per_image: float  # median batch-1 latency, measured interleaved with the other model
    ms_per_image_batched: float  # wall time of the batched evaluation pass / images


@dataclass
class Comparison:
    images: int
    skipped: int
    float32: Score
    int8: Score
    agreement: float
    max_abs_diff: float
    max_drop_points: float
    drop_points: float
    threads: str = "onnxruntime default (all cores)"
    per_class_accuracy: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.drop_points <= self.max_drop_points

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}

    def table(self) -> str:
        """What the CLI prints: the two models side by side."""
        f32, i8 = self.float32, self.int8
        rows = [
            ("", "float32", "int8"),
            ("accuracy", f"{f32.accuracy:.2%}", f"{i8.accuracy:.2%}"),
            ("errors", str(f32.errors), str(i8.errors)),
            ("size", f"{f32.size_bytes / 1e6:.1f} MB", f"{i8.size_bytes / 1e6:.1f} MB"),
            ("ms/image (batch 1)", f"{f32.ms_per_image:.1f}", f"{i8.ms_per_image:.1f}"),
            ("ms/image (batched)", f"{f32.ms_per_image_batched:.1f}",
             f"{i8.ms_per_image_batched:.1f}"),
        ]  # fmt: skip
        lines = [f"  {a:<20}{b:>12}{c:>12}" for a, b, c in rows]
        lines.append(
            f"  agreement {self.agreement:.2%} on {self.images} images, max |Δp| "
            f"{self.max_abs_diff:.3g}; accuracy drop {self.drop_points:+.2f} points "
            f"(allowed {self.max_drop_points:g})"
        )
        return "\n".join(lines)


def compare_models(
    float32_path: Path, int8_path: Path, examples: Sequence[Example],
    max_drop_points: float = DEFAULT_MAX_DROP,
    batch_size: int = 16,  # VGG16 activations for 16 images already take ~1 GB
    latency_runs: int = 20, warmup: int = 3,
) -> Comparison:  # fmt: skip
    """Both models over the same decoded images, timed in this one run."""
    models = {"float32": load_onnx(float32_path), "int8": load_onnx(int8_path)}
    run = _predict_all(models, examples, batch_size, latency_runs)
    truth = np.asarray(run.truth, dtype=np.int64)
    if not truth.size:
        raise QuantizationError("no check image could be decoded; cannot judge int8")
    probs = {name: np.concatenate(parts) for name, parts in run.probs.items()}
    picked = {name: model.spec.decide(probs[name]) for name, model in models.items()}
    latency = _latency(models, run.sample, warmup)
    scores = {
        name: Score(
            path=str(model.path),
            size_bytes=model.path.stat().st_size,
            quantization=model.spec.extra.get(MetaKey.QUANTIZATION, "unknown"),
            accuracy=accuracy(truth, picked[name]),
            errors=int((picked[name] != truth).sum()),
            ms_per_image=latency[name],
            ms_per_image_batched=1000.0 * run.seconds[name] / truth.size,
        )
        for name, model in models.items()
    }
    labels = models["float32"].spec.labels
    return Comparison(
        images=int(truth.size),
        skipped=run.skipped,
        float32=scores["float32"],
        int8=scores["int8"],
        agreement=float(np.mean(picked["float32"] == picked["int8"])),
        max_abs_diff=float(np.abs(probs["float32"] - probs["int8"]).max()),
        max_drop_points=max_drop_points,
        drop_points=100.0 * (scores["float32"].accuracy - scores["int8"].accuracy),
        per_class_accuracy={
            name: {
                label: accuracy(truth[truth == i], picked[name][truth == i])
                for i, label in enumerate(labels)
                if (truth == i).any()
            }
            for name in models
        },
    )


@dataclass
class _Pass:
    """What one pass of both models over the check images collected."""

    probs: dict[str, list[np.ndarray]]
    seconds: dict[str, float]
    truth: list[int] = field(default_factory=list)
    skipped: int = 0
    sample: np.ndarray = field(default_factory=lambda: generated_images(1))


def _predict_all(
    models: dict[str, OnnxModel], examples: Sequence[Example], batch_size: int, latency_runs: int
) -> _Pass:
    """Every decodable image through both models, each model's batches timed."""
    run = _Pass({name: [] for name in models}, dict.fromkeys(models, 0.0))
    for images, truth, bad in batches(examples, batch_size):
        run.skipped += len(bad)
        if not len(images):
            continue
        if not run.truth:
            run.sample = images[: max(1, min(len(images), latency_runs))]
            for model in models.values():  # warm-up: first-run allocations are not inference
                model.predict(images)
        for name, model in models.items():
            start = time.perf_counter()
            run.probs[name].append(model.predict(images))
            run.seconds[name] += time.perf_counter() - start
        run.truth.extend(truth)
    return run


def _latency(models: dict[str, OnnxModel], images: np.ndarray, warmup: int) -> dict[str, float]:
    """Median batch-1 milliseconds, the models taking turns image by image so a busy machine
    slows both alike."""
    for model in models.values():
        for i in range(warmup):
            model.predict(images[i % len(images)][None])
    times: dict[str, list[float]] = {name: [] for name in models}
    for image in images:
        for name, model in models.items():
            start = time.perf_counter()
            model.predict(image[None])
            times[name].append(1000.0 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}


def gate(comparison: Comparison) -> None:
    """Refuse int8 when it loses more than the allowed accuracy points."""
    if not comparison.passed:
        raise AccuracyGateError(
            f"int8 accuracy {comparison.int8.accuracy:.2%} is {comparison.drop_points:.2f} points "
            f"below float32 {comparison.float32.accuracy:.2%} on {comparison.images} images; "
            f"at most {comparison.max_drop_points:g} allowed"
        )
