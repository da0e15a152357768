"""Graph surgery: a second output, ``heatmap``, the head's class activation map (CAM).

The head is global average pooling -> dropout (gone at inference) -> dense -> softmax, so the
dense layer applied at every position of the map the pooling averages is an exact CAM (see
contract.heatmap for its definition and range). Three nodes beside the head compute it from
the tensor the pooling reads: Mul by the positive-minus-negative dense weights, ReduceSum over
channels, Add the bias difference. Nothing on the way to ``probabilities`` changes.

export/pipeline.py adds it to the float32 graph before quantizing, which keeps these nodes
float (training.int8.side_branch). A file exported without it simply has no /why.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nothotdog.contract import HEATMAP_NAME, MetaKey, ModelSpec
from nothotdog.contract.runtime import ModelLoadError

PREFIX = "heatmap/"
# Between the pooling and the dense layer tf2onnx leaves at most these (dropout included).
PASS_THROUGH = frozenset({"Squeeze", "Reshape", "Flatten", "Identity", "Dropout"})


class HeatmapError(ModelLoadError):
    """The graph has no global pooling -> dense -> softmax head, so no exact CAM exists (a
    ModelLoadError, so the export CLI reports a failed export rather than a crash)."""


@dataclass(frozen=True)
class Head:
    """Where the head reads its features, and its dense layer as plain arrays."""

    pool_index: int  # position of the GlobalAveragePool node in graph.node
    features: str  # the NCHW tensor it averages
    weights: np.ndarray  # [channels, classes]
    bias: np.ndarray  # [classes]


def find_dense(graph: onnx.GraphProto) -> tuple[onnx.NodeProto, str | None]:
    """The dense layer that computes the logits, and its bias's name when an Add adds it:
    Softmax <- [Add <-] MatMul, or Softmax <- Gemm (tf2onnx's MatMul and Add, fused by
    onnxruntime's optimiser in the int8 files)."""
    producers = {out: node for node in graph.node for out in node.output}
    softmax = producers.get(graph.output[0].name)
    if softmax is None or softmax.op_type != "Softmax":
        raise HeatmapError("the first output is not computed by a Softmax")
    dense, bias_name = producers.get(softmax.input[0]), None
    if dense is not None and dense.op_type == "Add":
        matmuls = [producers.get(name) for name in dense.input]
        at = next((i for i, m in enumerate(matmuls) if m and m.op_type == "MatMul"), None)
        if at is None:
            raise HeatmapError("the logits come from an Add without a MatMul")
        bias_name, dense = dense.input[1 - at], matmuls[at]
    if dense is None or dense.op_type not in ("MatMul", "Gemm"):
        raise HeatmapError("the Softmax does not read a dense layer (MatMul or Gemm)")
    if dense.op_type == "Gemm" and any(a.name == "transA" and a.i for a in dense.attribute):
        raise HeatmapError("the dense layer (Gemm) reads its features transposed")
    return dense, bias_name


def find_pool(graph: onnx.GraphProto, features: str) -> int:
    """Position in graph.node of the GlobalAveragePool whose output, through pass-through ops
    only, is the tensor ``features``."""
    producers = {out: node for node in graph.node for out in node.output}
    pool = producers.get(features)
    while pool is not None and pool.op_type in PASS_THROUGH:
        pool = producers.get(pool.input[0])
    if pool is None or pool.op_type != "GlobalAveragePool":
        raise HeatmapError("found no global average pooling before the dense layer")
    return next(i for i, node in enumerate(graph.node) if node is pool)


def find_head(graph: onnx.GraphProto) -> Head:
    """Walk back from ``probabilities`` through what tf2onnx makes of the Keras head:
    Softmax <- [Add <-] MatMul <- pass-through ops <- GlobalAveragePool."""
    inits = {t.name: t for t in graph.initializer}
    dense, bias_name = find_dense(graph)
    if dense.op_type != "MatMul":
        raise HeatmapError("the heatmap is added before onnxruntime fuses the head into a Gemm")
    weights = _array(dense.input[1], inits, "weights")
    bias = np.zeros(weights.shape[1])
    if bias_name is not None:
        bias = np.broadcast_to(_array(bias_name, inits, "bias").reshape(-1), bias.shape)
    index = find_pool(graph, dense.input[0])
    return Head(index, graph.node[index].input[0], weights, bias)


def _array(name: str, inits: dict[str, onnx.TensorProto], what: str) -> np.ndarray:
    if name not in inits:
        raise HeatmapError(f"the dense {what} {name!r} is not a constant of the graph")
    return numpy_helper.to_array(inits[name]).astype(np.float64)


def add_heatmap(proto: onnx.ModelProto, spec: ModelSpec) -> ModelSpec:
    """Add the ``heatmap`` output to ``proto`` in place; return ``spec`` saying so."""
    graph = proto.graph
    if any(o.name == HEATMAP_NAME for o in graph.output):
        raise HeatmapError(f"the graph already has a {HEATMAP_NAME!r} output")
    head = find_head(graph)
    channels, classes = head.weights.shape
    if classes != len(spec.labels):
        raise HeatmapError(f"the dense layer has {classes} outputs for {len(spec.labels)} labels")
    # The logit combination the map shows: positive minus the mean of the others (for two
    # classes, the log-odds of the positive class).
    direction = np.full(classes, -1.0 / (classes - 1))
    direction[spec.positive_index] = 1.0
    weights = (head.weights @ direction).astype(np.float32).reshape([1, channels, 1, 1])
    bias = np.float32(head.bias @ direction)
    graph.initializer.extend([
        numpy_helper.from_array(weights, f"{PREFIX}weights"),
        numpy_helper.from_array(np.array(bias, np.float32), f"{PREFIX}bias"),
        numpy_helper.from_array(np.array([1], np.int64), f"{PREFIX}axes"),  # channels
    ])  # fmt: skip
    nodes = [
        helper.make_node("Mul", [head.features, f"{PREFIX}weights"], [f"{PREFIX}weighted"],
                         name=f"{PREFIX}Mul"),
        helper.make_node("ReduceSum", [f"{PREFIX}weighted", f"{PREFIX}axes"], [f"{PREFIX}sum"],
                         name=f"{PREFIX}ReduceSum", keepdims=0),
        helper.make_node("Add", [f"{PREFIX}sum", f"{PREFIX}bias"], [HEATMAP_NAME],
                         name=f"{PREFIX}Add"),
    ]  # fmt: skip
    # Right after the pooling: topologically sound, and inside the block that training.int8
    # finds as "the head", ahead of the Softmax that ends it.
    for offset, node in enumerate(nodes, start=1):
        graph.node.insert(head.pool_index + offset, node)
    grid = _spatial_dims(proto, head)
    batch = graph.output[0].type.tensor_type.shape.dim[0]
    dims = [batch.dim_param or batch.dim_value or "batch", *grid]
    graph.output.append(helper.make_tensor_value_info(HEATMAP_NAME, TensorProto.FLOAT, dims))
    return dataclasses.replace(spec, extra={**spec.extra, MetaKey.HEATMAP: describe(spec, grid)})


def _spatial_dims(proto: onnx.ModelProto, head: Head) -> list[int | str]:
    """The feature map's height and width from shape inference, or names when unknown."""
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    found = next((v for v in values if v.name == head.features), None)
    dims = list(found.type.tensor_type.shape.dim) if found is not None else []
    if len(dims) != 4:
        return ["height", "width"]
    return [dims[2].dim_value or "height", dims[3].dim_value or "width"]


def describe(spec: ModelSpec, grid: Sequence[int | str]) -> str:
    """The metadata value: what the output holds, in one JSON object."""
    pos = spec.positive_label
    others = [label for label in spec.labels if label != pos]
    if len(others) == 1:
        rest, mean = f"logit({others[0]})", f"log(P({pos}) / P({others[0]}))"
    else:
        rest, mean = f"the mean logit of {others}", "the same difference for the whole image"
    return json.dumps({
        "output": HEATMAP_NAME,
        "shape": ["batch", *grid],
        "label": pos,
        "value": f"class activation map: per position, logit({pos}) - {rest} of the dense head "
        f"applied to the feature map the global pooling averages; unbounded; its mean over "
        f"positions is {mean}",
        "drawn": "scaled per image to [0, 1], upsampled bicubically, inferno colours "
        "(contract.heatmap)",
    })  # fmt: skip

