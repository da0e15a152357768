"""Static int8 quantization (QDQ, per-channel weights) and the side-by-side check that gates it.

onnxruntime's recipe: ``quant_pre_process`` (shape inference + graph optimisation) first, then
``quantize_static`` calibrated on real training images, then a comparison with the float32
model on held-out images, both loaded the way the bot loads them (contract.runtime.load_onnx).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from nothotdog.contract import INPUT_NAME, INPUT_SIZE, MetaKey
from nothotdog.contract.dataset import Example
from nothotdog.contract.runtime import OnnxModel, load_onnx
from nothotdog.export.fold import PADDED, feed_uint8
from nothotdog.export.heatmap import heatmap_branch
from nothotdog.export.images import batches, generated_images
from nothotdog.export.settings import (
    DEFAULT_ACTIVATIONS,
    DEFAULT_CALIBRATION_IMAGES,
    DEFAULT_EXCLUDE,
    DEFAULT_MAX_DROP,
    EXCLUDE_GROUPS,
)
from nothotdog.training.metrics import accuracy

# MinMax calibration: the augmented model returns only each tensor's min and max per batch,
# so memory stays flat and batching changes no range. Entropy and percentile calibration
# keep every activation of every calibration image (tens of MB per image for VGG16 at 224),
# which a few hundred images would not fit in memory.
CALIBRATION_BATCH = 8
# The classifier head starts at the global pooling after the last convolution (Keras:
# GlobalAveragePooling2D -> Dropout -> Dense softmax); everything from there stays float.
HEAD_START_OPS = frozenset({"GlobalAveragePool", "ReduceMean", "Flatten"})
ACTIVATION_TYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}


class QuantizationError(RuntimeError):
    """Quantization could not run, or its result failed a check."""


class AccuracyGateError(QuantizationError):
    """int8 lost more accuracy than allowed; the int8 file must not ship."""


@dataclass(frozen=True)
class QuantSettings:
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES
    seed: int = 0
    exclude: str = DEFAULT_EXCLUDE
    activations: str = DEFAULT_ACTIVATIONS

    def describe(self, images: int) -> str:
        """The one-line story stored in the model's metadata and shown by /about."""
        return (
            f"int8 static QDQ (onnxruntime): per-channel int8 weights, {self.activations} "
            f"activations, MinMax calibration on {images} training images; "
            f"float kept: {self.exclude}"
        )


class ExampleReader(CalibrationDataReader):
    """Feeds calibration batches decoded on demand, so a few hundred photos never sit in
    memory at once; undecodable files are skipped and counted. ``size`` is the side the images
    are decoded to: the export's input size, or the trunk's training size (training.onnx_trunk)."""

    def __init__(
        self,
        examples: Sequence[Example],
        batch_size: int = CALIBRATION_BATCH,
        size: int = INPUT_SIZE,
    ) -> None:
        self.examples = list(examples)
        self.batch_size = batch_size
        self.size = size
        self.rewind()

    def rewind(self) -> None:
        self._batches = batches(self.examples, self.batch_size, self.size)
        self.used = 0
        self.skipped: list[Path] = []

    def get_next(self) -> dict[str, np.ndarray] | None:
        for images, _, skipped in self._batches:
            self.skipped.extend(skipped)
            if len(images):
                self.used += len(images)
                return {INPUT_NAME: images}
        return None


def parse_exclude(which: str) -> tuple[str, ...]:
    """"head+first_conv" -> ("head", "first_conv"); "none" -> ()."""
    groups = () if which == "none" else tuple(which.split("+"))
    unknown = [g for g in groups if g not in EXCLUDE_GROUPS]
    if unknown:
        raise QuantizationError(
            f"exclude must be 'none' or groups of {EXCLUDE_GROUPS} joined by '+', not {which!r}"
        )
    return groups


def excluded_nodes(proto: onnx.ModelProto, which: str) -> list[str]:
    """Names of the nodes kept in float, found by position relative to the convolutions so
    they survive renaming by the graph optimiser (see settings.EXCLUDE_GROUPS), plus the
    heatmap's nodes, found by what they compute (export.heatmap)."""
    groups = parse_exclude(which)
    nodes = list(proto.graph.node)
    convs = [i for i, node in enumerate(nodes) if node.op_type == "Conv"]
    if not convs:
        raise QuantizationError("the graph has no Conv node; is this the VGG16 model?")
    names: list[str] = []
    if "preprocess" in groups:
        names += [node.name for node in nodes[: convs[0]]]
    if "first_conv" in groups:
        end = convs[1] if len(convs) > 1 else convs[0] + 1
        names += [node.name for node in nodes[convs[0] : end] if node.op_type in ("Conv", "Relu")]
    if "head" in groups:
        after = nodes[convs[-1] + 1 :]
        pools = [i for i, node in enumerate(after) if node.op_type in HEAD_START_OPS]
        if not pools:
            raise QuantizationError("no global pooling after the last Conv: where is the head?")
        names += [node.name for node in after[pools[0] :]]
    # Always float, whatever the groups: the heatmap's few nodes cost nothing, and its output
    # is read by people, not compared against a threshold.
    names += [name for name in heatmap_branch(proto) if name not in names]
    return names


@dataclass
class QuantResult:
    description: str
    calibration_images: int
    calibration_skipped: int
    excluded_nodes: list[str]
    seconds: float


def quantize_int8(
    float32_path: Path,
    reader: ExampleReader,
    settings: QuantSettings,
    workdir: Path,
) -> tuple[onnx.ModelProto, QuantResult]:
    """The int8 model, in memory, so the caller adds its metadata and writes the file once.

    onnxruntime's shape inference writes the prepared model to ``workdir``; quantize_static
    takes it in memory and writes to a temporary folder inside ``workdir``, gone on return."""
    if settings.activations not in ACTIVATION_TYPES:
        raise QuantizationError(f"activations must be one of {sorted(ACTIVATION_TYPES)}")
    started = time.perf_counter()
    prepared = workdir / "preprocessed.onnx"
    quant_pre_process(str(float32_path), str(prepared))
    proto = onnx.load(str(prepared))
    _name_nodes(proto)
    exclude = excluded_nodes(proto, settings.exclude)
    first = [n for n in proto.graph.node if PADDED in n.input and n.name not in exclude]
    image_weights = first[0].input[1] if first else None
    with tempfile.TemporaryDirectory(dir=workdir, prefix="quantized-") as tmp:
        quantized = Path(tmp) / "int8.onnx"
        try:
            _quantize_static(proto, quantized, reader, settings, exclude, image_weights)
        except ValueError as exc:  # onnxruntime: "No data is collected."
            if reader.used == 0:
                raise QuantizationError("no calibration image could be decoded") from exc
            raise
        int8 = onnx.load(str(quantized))
    if image_weights:
        feed_uint8(int8)
    return int8, QuantResult(
        description=settings.describe(reader.used),
        calibration_images=reader.used,
        calibration_skipped=len(reader.skipped),
        excluded_nodes=exclude,
        seconds=time.perf_counter() - started,
    )


def _quantize_static(
    prepared: onnx.ModelProto,
    out_path: Path,
    reader: ExampleReader,
    settings: QuantSettings,
    exclude: list[str],
    image_weights: str | None = None,
) -> None:
    extra: dict[str, Any] = {"WeightSymmetric": True, "ActivationSymmetric": False}
    if image_weights:
        # The folded first convolution reads pixel values: quantize them as themselves, so the
        # QuantizeLinear is the identity that feed_uint8 can remove. Its weights get 7 bits:
        # CPUs without VNNI (AVX2) add u8 x s8 products in pairs into int16, and two bright
        # pixels (255) times two full-range weights (127) overflow it; 255 * 63 * 2 does not.
        # Later layers read ReLU outputs spread over the uint8 range and keep 8-bit weights.
        one = {"scale": np.array(1.0, np.float32), "zero_point": np.array(0, np.uint8)}
        extra["TensorQuantOverrides"] = {
            PADDED: [one],
            image_weights: [{"axis": 0, "reduce_range": True}],
        }
    quantize_static(
        prepared,
        str(out_path),
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=ACTIVATION_TYPES[settings.activations],
        weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options=extra,
    )


def _name_nodes(proto: onnx.ModelProto) -> None:
    """quantize_static excludes nodes by name; give any unnamed node a stable one."""
    for i, node in enumerate(proto.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"


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
        rows = [
            ("", "float32", "int8"),
            ("accuracy", f"{self.float32.accuracy:.2%}", f"{self.int8.accuracy:.2%}"),
            ("errors", str(self.float32.errors), str(self.int8.errors)),
            ("size", _mb(self.float32.size_bytes), _mb(self.int8.size_bytes)),
            (
                "ms/image (batch 1)",
                f"{self.float32.ms_per_image:.1f}",
                f"{self.int8.ms_per_image:.1f}",
            ),
            (
                "ms/image (batched)",
                f"{self.float32.ms_per_image_batched:.1f}",
                f"{self.int8.ms_per_image_batched:.1f}",
            ),
        ]
        lines = [f"  {a:<20}{b:>12}{c:>12}" for a, b, c in rows]
        lines.append(
            f"  agreement {self.agreement:.2%} on {self.images} images, max |Δp| "
            f"{self.max_abs_diff:.3g}; accuracy drop {self.drop_points:+.2f} points "
            f"(allowed {self.max_drop_points:g})"
        )
        return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def compare_models(
    float32_path: Path,
    int8_path: Path,
    examples: Sequence[Example],
    max_drop_points: float = DEFAULT_MAX_DROP,
    batch_size: int = 16,  # VGG16 activations for 16 images already take ~1 GB
    latency_runs: int = 20,
    warmup: int = 3,
) -> Comparison:
    """Both models over the same decoded images, timed in this one run so the numbers are
    comparable; each model's verdict uses the threshold from its own metadata."""
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
