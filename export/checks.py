"""The checks an exported file passes before it is written.

Parity: Keras and the float32 ONNX graph on the same pixels (real photos when there are some,
generated images otherwise), the proof that conversion lost nothing. The int8 gate: float32 and
int8 side by side on held-out photos, both loaded the way the bot loads them
(contract.runtime.load_onnx) and timed in one run, each deciding by its own metadata's
threshold; int8 ships only if it loses at most ``--max-drop`` accuracy points.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nothotdog.contract import FEATURES_NAME, INPUT_NAME, INPUT_SIZE, MetaKey, ModelSpec
from nothotdog.contract.dataset import Example
from nothotdog.contract.runtime import OnnxModel, load_onnx
from nothotdog.export import DEFAULT_MAX_DROP, TOLERANCE
from nothotdog.training.int8 import QuantizationError, batches
from nothotdog.training.metrics import accuracy

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
    return np.concatenate([np.asarray(model.predict_on_batch(images[i : i + batch]), np.float32)
                           for i in range(0, len(images), batch)])  # fmt: skip


def onnx_probabilities(session: Any, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """``session``: an onnxruntime.InferenceSession taking the contract's uint8 input."""
    feeds = ({INPUT_NAME: np.ascontiguousarray(images[i : i + batch])}
             for i in range(0, len(images), batch))  # fmt: skip
    return np.concatenate([session.run(None, feed)[0] for feed in feeds])


def compare(
    reference: np.ndarray, candidate: np.ndarray, spec: ModelSpec, source: str,
    names: list[str] | None = None, tolerance: float = TOLERANCE,
) -> ParityReport:  # fmt: skip
    """Probabilities and labels (by the spec's threshold) of two models on the same images."""
    if reference.shape != candidate.shape:
        raise ParityError(f"output shapes differ: Keras {reference.shape}, ONNX {candidate.shape}")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64)).max(axis=1)
    ref_labels, cand_labels = spec.decide(reference), spec.decide(candidate)
    mismatched = np.flatnonzero(ref_labels != cand_labels).tolist()
    shown = sorted({*np.argsort(-diff)[:3].tolist(), *mismatched[:5]}, key=lambda i: -diff[i])
    worst = [{"image": names[i] if names else i, "abs_diff": float(diff[i]),
              "keras": spec.labels[ref_labels[i]], "onnx": spec.labels[cand_labels[i]]}
             for i in shown]  # fmt: skip
    mean = float(diff.mean()) if len(diff) else 0.0
    return ParityReport(len(reference), source, float(diff.max(initial=0.0)), mean,
                        len(mismatched), tolerance, worst)  # fmt: skip


def check_parity(
    model: Any, session: Any, images: np.ndarray, spec: ModelSpec, source: str,
    names: list[str] | None = None, tolerance: float = TOLERANCE,
) -> ParityReport:  # fmt: skip
    """Run both and raise ParityError, with the worst images named, when they disagree."""
    if len(images) == 0:
        raise ParityError("no images to check parity on")
    report = compare(keras_probabilities(model, images), onnx_probabilities(session, images),
                     spec, source, names, tolerance)
    if not report.ok:
        raise ParityError(
            f"ONNX does not match Keras on {source} ({report.images} images): max |Δp| "
            f"{report.max_abs_diff:.3g} (limit {tolerance:g}), {report.label_mismatches} "
            f"label(s) differ; worst: {report.worst}"
        )
    return report


# float32 ONNX vs Keras features, as a share of the largest feature (they are ReLU averages).
FEATURES_TOLERANCE = 1e-4


def keras_features(model: Any, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """The output of the model's global average pooling (the dense head's input)."""
    import keras  # only the parity check needs it: the rest of this module runs without

    pools = [layer for layer in model.layers
             if isinstance(layer, keras.layers.GlobalAveragePooling2D)]  # fmt: skip
    if len(pools) != 1:
        raise ParityError(f"the Keras model has {len(pools)} global average poolings, not one")
    pooled = keras.Model(model.inputs, pools[0].output)
    return keras_probabilities(pooled, images, batch)


def check_features_parity(model: Any, session: Any, images: np.ndarray,
                          tolerance: float = FEATURES_TOLERANCE) -> dict[str, float]:  # fmt: skip
    """The ONNX ``features`` output against Keras's pooling (raises ParityError)."""
    reference = keras_features(model, images)
    runs = (session.run([FEATURES_NAME], {INPUT_NAME: images[i : i + BATCH]})[0]
            for i in range(0, len(images), BATCH))
    onnx_features = np.concatenate(list(runs))
    if onnx_features.shape != reference.shape:
        raise ParityError(f"features are {onnx_features.shape}, Keras's {reference.shape}")
    scale = max(float(np.abs(reference).max()), 1e-12)
    diff = float(np.abs(onnx_features.astype(np.float64) - reference).max()) / scale
    if not diff <= tolerance:
        raise ParityError(f"ONNX features differ from Keras's by {diff:.3g} of the largest "
                          f"value (limit {tolerance:g})")  # fmt: skip
    return {"images": len(images), "max_relative_diff": diff, "tolerance": tolerance}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; 1 where both rows are zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = (a * b).sum(axis=1)
    return np.where(norms > 0, dots / np.maximum(norms, 1e-300), 1.0)


# --- the int8 gate --------------------------------------------------------------------------


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
    # int8 features against float32's, per photo (cosine similarity: nearest class means,
    # bot.taught, compare directions): information, not a gate; None without features.
    features_cosine: dict[str, float] | None = None

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
        if self.features_cosine:
            lines.append(f"  features: cosine similarity int8 vs float32 "
                         f"{self.features_cosine['mean']:.4f} on average, "
                         f"{self.features_cosine['min']:.4f} at worst")  # fmt: skip
        return "\n".join(lines)


def compare_models(
    float32_path: Path, int8_path: Path, examples: Sequence[Example],
    max_drop_points: float = DEFAULT_MAX_DROP,
    batch_size: int = 16,  # VGG16 activations for 16 images already take ~1 GB
    latency_runs: int = 20, warmup: int = 3,
) -> Comparison:  # fmt: skip
    """Both models over the same decoded images, timed in this one run."""
    # onnxruntime is the reference both files are judged on.
    models = {name: load_onnx(path, runtime="onnxruntime")
              for name, path in (("float32", float32_path), ("int8", int8_path))}
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
    similar = None
    if run.features["float32"] and run.features["int8"]:
        both = [np.concatenate(run.features[name]) for name in ("float32", "int8")]
        similar = cosines(*both)
    return Comparison(
        images=int(truth.size),
        skipped=run.skipped,
        float32=scores["float32"],
        int8=scores["int8"],
        agreement=float(np.mean(picked["float32"] == picked["int8"])),
        max_abs_diff=float(np.abs(probs["float32"] - probs["int8"]).max()),
        max_drop_points=max_drop_points,
        drop_points=100.0 * (scores["float32"].accuracy - scores["int8"].accuracy),
        per_class_accuracy={name: {label: accuracy(truth[truth == i], picked[name][truth == i])
                                   for i, label in enumerate(labels) if (truth == i).any()}
                            for name in models},
        features_cosine=None if similar is None else
        {"mean": float(similar.mean()), "min": float(similar.min())},
    )  # fmt: skip


@dataclass
class _Pass:
    """What one pass of both models over the check images collected."""

    probs: dict[str, list[np.ndarray]]
    seconds: dict[str, float]
    features: dict[str, list[np.ndarray]] = field(default_factory=dict)
    truth: list[int] = field(default_factory=list)
    skipped: int = 0
    sample: np.ndarray = field(default_factory=lambda: generated_images(1))


def _predict_all(models: dict[str, OnnxModel], examples: Sequence[Example], batch_size: int,
                 latency_runs: int) -> _Pass:  # fmt: skip
    """Every decodable image through both models, each model's batches timed."""
    run = _Pass({name: [] for name in models}, dict.fromkeys(models, 0.0),
                {name: [] for name in models})  # fmt: skip
    with_features = all(model.has_features for model in models.values())
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
            if with_features:  # in the same run: the features cost nothing extra
                probs, features = model.features(images)
                run.features[name].append(features)
            else:
                probs = model.predict(images)
            run.probs[name].append(probs)
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
