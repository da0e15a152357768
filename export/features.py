"""Graph surgery: an output, ``features``, the pooled features the dense head reads.

The head is global average pooling -> (squeeze) -> dense -> softmax; its input, one number per
channel of the last feature map (512 for VGG16), describes a photo well enough to tell dishes
apart from a few examples: that is what a chat's own labels compare (``/teach``, bot.taught).
One Identity node exposes that tensor as an output; nothing on the way to ``probabilities``
changes, so a file gets it without a new export:

    nothotdog-export --add-features models/nothotdog.onnx   # in place, or --out NEW.onnx

which is :func:`add_features_to_file`. It proves the verdicts unchanged (bit-identical
probabilities on every installed runtime) before it writes. export/pipeline.py adds the
output to every new export, before quantizing, which keeps it float (training.int8.side_branch).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from nothotdog.contract import FEATURES_NAME, INPUT_SIZE, MetaKey, ModelSpec
from nothotdog.contract.runtime import ModelLoadError, load_onnx, openvino_installed
from nothotdog.export.heatmap import HeatmapError, find_dense, find_pool

NODE_NAME = "features/Identity"
# Images the in-place step compares the file on before and after (flat colours, gradients and
# noise: export.checks.generated_images), and the bar: bit for bit.
CHECK_IMAGES = 16


class FeaturesError(ModelLoadError):
    """The graph has no global pooling -> dense -> softmax head, or has features already."""


def add_features(proto: onnx.ModelProto, spec: ModelSpec) -> ModelSpec:
    """Add the ``features`` output to ``proto`` in place; return ``spec`` saying so."""
    graph = proto.graph
    if any(o.name == FEATURES_NAME for o in graph.output):
        raise FeaturesError(f"the graph already has a {FEATURES_NAME!r} output")
    try:
        dense, _ = find_dense(graph)
        find_pool(graph, dense.input[0])  # only pooled features: a flattened map is no use
    except HeatmapError as exc:
        raise FeaturesError(str(exc)) from exc
    pooled = dense.input[0]
    at = next((i for i, node in enumerate(graph.node) if pooled in node.output), -1)
    # Right after the tensor's producer: topologically sound, and (before quantizing) in the
    # side branch that training.int8 keeps float, like the heatmap.
    graph.node.insert(at + 1, helper.make_node("Identity", [pooled], [FEATURES_NAME],
                                               name=NODE_NAME))  # fmt: skip
    channels = _channels(graph, dense)
    batch = graph.output[0].type.tensor_type.shape.dim[0]
    dims = [batch.dim_param or batch.dim_value or "batch", channels]
    graph.output.append(helper.make_tensor_value_info(FEATURES_NAME, TensorProto.FLOAT, dims))
    return dataclasses.replace(spec, extra={**spec.extra, MetaKey.FEATURES: describe(channels)})


def _channels(graph: onnx.GraphProto, dense: onnx.NodeProto) -> int | str:
    """How many numbers the dense layer reads, from its weights' shape (MatMul: [in, out];
    Gemm: [out, in] when transB)."""
    weights = next((t for t in graph.initializer if t.name == dense.input[1]), None)
    if weights is None or len(weights.dims) != 2:
        return "channels"
    transposed = any(a.name == "transB" and a.i for a in dense.attribute)
    return int(weights.dims[1] if dense.op_type == "Gemm" and transposed else weights.dims[0])


def describe(channels: int | str) -> str:
    """The metadata value: what the output holds, in one JSON object."""
    return json.dumps({
        "output": FEATURES_NAME,
        "shape": ["batch", channels],
        "value": "the global average pooling of the last feature map: the dense head's input, "
        "float32, non-negative (ReLU features)",
        "use": "a chat's own labels (/teach) compare photos by these numbers (bot.taught)",
    })  # fmt: skip


def add_features_to_file(path: str | Path, out: str | Path | None = None) -> Path:
    """``path`` with the ``features`` output, written to ``out`` (default: ``path`` itself,
    replaced atomically) once its probabilities are proved bit-identical to the original's
    on every installed runtime. Returns where it wrote."""
    path, out = Path(path), Path(out or path)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    spec = add_features(proto, ModelSpec.from_metadata(meta))
    helper.set_model_props(proto, {**meta, MetaKey.FEATURES: spec.extra[MetaKey.FEATURES]})
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}-") as tmp:
        staged = Path(tmp) / out.name
        onnx.save(proto, str(staged))
        prove_same_verdicts(path, staged)
        os.replace(staged, out)
    return out


def prove_same_verdicts(before: Path, after: Path) -> None:
    """Raise FeaturesError unless ``after`` gives ``before``'s probabilities bit for bit, on
    each runtime, and features of the promised shape."""
    from nothotdog.export.checks import generated_images  # numpy only; keeps this import light

    images = generated_images(CHECK_IMAGES, seed=5, size=INPUT_SIZE)
    runtimes = ["onnxruntime", *(["openvino"] if openvino_installed() else [])]
    for runtime in runtimes:
        old, new = (load_onnx(p, intra_op_threads=1, runtime=runtime) for p in (before, after))
        if new.runtime != runtime:
            raise FeaturesError(f"{runtime} cannot run {after}")
        for image in images:  # one at a time, as the bot runs them
            probs, features = new.features(image[None])
            if not np.array_equal(old.predict(image[None]), probs):
                raise FeaturesError(f"adding features changed the probabilities on {runtime}")
            if features.shape[0] != 1 or features.ndim != 2 or not np.isfinite(features).all():
                raise FeaturesError(f"features of shape {features.shape} on {runtime}")
