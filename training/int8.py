"""Keras to ONNX, and static int8 quantization: the frozen trunk's feature cache runs on them,
and export builds the shipped file with them (export imports training, never the reverse).

Why the cache uses int8 by default (``--trunk-runtime onnx-int8``): on CPU, int8 onnxruntime
runs VGG16's frozen blocks several times faster than Keras, and the shipped model is int8 too,
calibrated the same way, so the layers trained on top learn from activations close to the
bot's. The recipe is onnxruntime's: ``quant_pre_process``, then ``quantize_static`` (QDQ,
per-channel int8 weights) calibrated on real training photos. Heavy imports wait inside the
functions, so the commands show these defaults quickly.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nothotdog.contract import INPUT_NAME, INPUT_SIZE, ImageDecodeError, load_image_file
from nothotdog.contract.dataset import Example
from nothotdog.contract.runtime import open_engine

DEFAULT_OPSET = 17
DEFAULT_CALIBRATION_IMAGES = 300
# Node groups that can stay float when quantizing, combined with "+" (or "none"):
# "preprocess": everything before the first convolution. In the exported graph that is only
#   the mean-colour padding of the image (export.convert folds the rest into the convolution),
#   which export.convert.feed_uint8 redoes on uint8, so int8 starts at the image itself;
# "first_conv": block1_conv1 and its ReLU (3 input channels: ~0.6% of VGG16's work);
# "head": global pooling, Dense and softmax after the last convolution.
EXCLUDE_GROUPS = ("preprocess", "first_conv", "head")
# The default: every convolution int8 from the uint8 image (a float first convolution costs a
# float block1, 4x the activation memory, and Transposes inside the stack); the head float,
# where it halves the probability error.
DEFAULT_EXCLUDE = "preprocess+head"
# The trunk keeps its preprocessing and first convolution float: changing that would change
# every feature cached so far.
TRUNK_FLOAT = "preprocess+first_conv"
ACTIVATION_CHOICES = ("uint8", "int8")
DEFAULT_ACTIVATIONS = "uint8"
# MinMax calibration: the augmented model returns only each tensor's min and max per batch,
# so memory stays flat and batching changes no range. Entropy and percentile calibration
# keep every activation of every calibration image (tens of MB per image for VGG16 at 224),
# which a few hundred images would not fit in memory.
CALIBRATION_BATCH = 8
# The classifier head starts at the global pooling after the last convolution (Keras:
# GlobalAveragePooling2D -> Dropout -> Dense softmax).
HEAD_START_OPS = frozenset({"GlobalAveragePool", "ReduceMean", "Flatten"})


class QuantizationError(RuntimeError):
    """Quantization could not run, or its result failed a check."""


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


def keras_to_onnx(model, size: int = INPUT_SIZE, opset: int = DEFAULT_OPSET):
    """``model`` (uint8 image in) as a float32 ONNX graph, whatever precision it was built in.

    tf2onnx traces it through a ``tf.function`` with an explicit uint8 ``input_signature``
    (with Keras 3 it cannot read the input specs itself): no SavedModel on disk, the input
    stays uint8 (the in-graph preprocessing travels into the file), the batch stays dynamic.
    """
    import tensorflow as tf
    import tf2onnx

    from nothotdog.training.model import float32_copy

    signature = (tf.TensorSpec([None, size, size, 3], tf.uint8, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(
        float32_copy(model), input_signature=signature, opset=opset
    )
    return proto


def decode_examples(
    examples: Sequence[Example], size: int = INPUT_SIZE
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Images (through the contract's decode: the bot's pixels), their labels, and the files
    that could not be read or decoded: skipped, not fatal, so one photo that vanished does not
    end a long export or calibration."""
    images, labels, skipped = [], [], []
    for example in examples:
        try:
            images.append(load_image_file(example.path, size))
        except (ImageDecodeError, OSError):
            skipped.append(example.path)
            continue
        labels.append(example.label)
    array = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return array, np.asarray(labels, dtype=np.int64), skipped


def batches(
    examples: Sequence[Example], batch_size: int, size: int = INPUT_SIZE
) -> Iterator[tuple[np.ndarray, np.ndarray, list[Path]]]:
    """Decode lazily, so a pass over thousands of photos holds one batch in memory."""
    for start in range(0, len(examples), batch_size):
        yield decode_examples(examples[start : start + batch_size], size)


def stratified_sample(examples: Sequence[Example], n: int, seed: int = 0) -> list[Example]:
    """``n`` examples for calibration or a check, in proportion to each (class, source) group,
    so no class or source is left out the way "the first n files" would. ``n <= 0``: all."""
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


class ExampleReader:
    """onnxruntime's calibration data reader (its protocol is ``get_next``): batches decoded
    on demand, so a few hundred photos never sit in memory at once; undecodable files are
    skipped and counted."""

    def __init__(self, examples: Sequence[Example], size: int = INPUT_SIZE) -> None:
        self.used = 0
        self.skipped: list[Path] = []
        self._batches = batches(list(examples), CALIBRATION_BATCH, size)

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
    if set(groups) - set(EXCLUDE_GROUPS):
        raise QuantizationError(
            f"exclude must be 'none' or groups of {EXCLUDE_GROUPS} joined by '+', not {which!r}"
        )
    return groups


def ancestors(nodes: Sequence[Any], targets: Iterable[str]) -> set[int]:
    """Positions in ``nodes`` of the nodes that compute ``targets``, directly or through others
    (positions, because protobuf messages are unhashable and cannot go in a set)."""
    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    seen: set[int] = set()
    todo = [producer[t] for t in targets if t in producer]
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo.extend(producer[name] for name in nodes[i].input if name in producer)
    return seen


def side_branch(proto) -> list[str]:
    """Names of the nodes only the outputs after the first need (the heatmap, export.heatmap)."""
    nodes, outputs = list(proto.graph.node), [o.name for o in proto.graph.output]
    side = ancestors(nodes, outputs[1:]) - ancestors(nodes, outputs[:1])
    return [nodes[i].name for i in sorted(side)]


def excluded_nodes(proto, which: str) -> list[str]:
    """Names of the nodes kept in float, found by position relative to the convolutions so
    they survive renaming by the graph optimiser (see EXCLUDE_GROUPS), plus the side branch.
    """
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
    return names + [name for name in side_branch(proto) if name not in names]


@dataclass
class QuantResult:
    description: str
    calibration_images: int
    calibration_skipped: int
    excluded_nodes: list[str]
    seconds: float


def quantize_int8(
    float32_path: Path, reader: ExampleReader, settings: QuantSettings, workdir: Path,
    pixels: str | None = None,
) -> tuple[Any, QuantResult]:  # fmt: skip
    """The int8 model, in memory, so the caller adds its metadata and writes the file once.

    ``pixels``: a float tensor that holds plain pixel values (export.convert's padded image);
    it is quantized as itself (scale 1, zero point 0), so the caller can feed it uint8.
    Intermediate files go to ``workdir``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if settings.activations not in ACTIVATION_CHOICES:
        raise QuantizationError(f"activations must be one of {ACTIVATION_CHOICES}")
    started = time.perf_counter()
    prepared = workdir / "preprocessed.onnx"
    quant_pre_process(str(float32_path), str(prepared))
    proto = onnx.load(str(prepared))
    for i, node in enumerate(proto.graph.node):  # quantize_static excludes nodes by name
        node.name = node.name or f"{node.op_type}_{i}"
    exclude = excluded_nodes(proto, settings.exclude)
    extra: dict[str, Any] = {"WeightSymmetric": True, "ActivationSymmetric": False}
    first = [n for n in proto.graph.node if pixels and pixels in n.input and n.name not in exclude]
    if first:
        # The convolution reading pixel values: quantize them as themselves, so the
        # QuantizeLinear is the identity that export.convert.feed_uint8 removes. Its weights get
        # 7 bits: CPUs without VNNI (AVX2) add u8 x s8 products in pairs into int16, and two
        # bright pixels (255) times two full-range weights (127) overflow it; 255 * 63 * 2 does
        # not. Later layers read ReLU outputs spread over the uint8 range: 8-bit weights.
        one = {"scale": np.array(1.0, np.float32), "zero_point": np.array(0, np.uint8)}
        seven_bits = {"axis": 0, "reduce_range": True}
        extra["TensorQuantOverrides"] = {pixels: [one], first[0].input[1]: [seven_bits]}
    activations = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[settings.activations]
    with tempfile.TemporaryDirectory(dir=workdir, prefix="quantized-") as tmp:
        quantized = Path(tmp) / "int8.onnx"
        try:
            quantize_static(
                proto, str(quantized), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=activations, weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude, calibrate_method=CalibrationMethod.MinMax,
                extra_options=extra,
            )  # fmt: skip
        except ValueError as exc:  # onnxruntime: "No data is collected."
            if reader.used == 0:
                raise QuantizationError("no calibration image could be decoded") from exc
            raise
        int8 = onnx.load(str(quantized))
    return int8, QuantResult(
        description=settings.describe(reader.used),
        calibration_images=reader.used,
        calibration_skipped=len(reader.skipped),
        excluded_nodes=exclude,
        seconds=time.perf_counter() - started,
    )


def int8_trunk(trunk, calibration: Sequence[Example], workdir: Path,
               size: int = INPUT_SIZE) -> Callable[[np.ndarray], np.ndarray]:  # fmt: skip
    """``trunk`` (Keras, uint8 image in) as int8 ONNX, calibrated on a stratified sample of
    ``calibration``, run as the bot runs its model (OpenVINO when installed): its predict
    function, float16 out as the cache stores it."""
    import onnx

    workdir.mkdir(parents=True, exist_ok=True)
    float_path, int8_path = workdir / "trunk-float32.onnx", workdir / "trunk-int8.onnx"
    float_path.write_bytes(keras_to_onnx(trunk, size).SerializeToString())
    sample = stratified_sample(calibration, DEFAULT_CALIBRATION_IMAGES, seed=0)
    settings = QuantSettings(exclude=TRUNK_FLOAT)
    int8, _ = quantize_int8(float_path, ExampleReader(sample, size), settings, workdir)
    onnx.save(int8, str(int8_path))
    engine = open_engine(int8_path)  # the faster runtime, as the bot picks it
    name, output = engine.inputs[0].name, engine.outputs[0].name

    def predict(batch: np.ndarray) -> np.ndarray:
        return engine.run([output], {name: batch})[0].astype(np.float16)

    return predict
