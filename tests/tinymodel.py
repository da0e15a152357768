"""A tiny real ONNX model whose verdict follows the pixels: red-ish means hotdog.

Built with ``onnx.helper`` (no TensorFlow), it follows the same input/output contract as the
shipped model, so tests exercise real decoding and onnxruntime inference end to end. With
``heatmap=True`` it also has the ``heatmap`` output: the same redness logit per 32 x 32 block
(7 x 7 at 224), whose mean is the logit of P(hot_dog), as in the exported models. Unless
``features=False`` it has the ``features`` output too, as exports now have it: its pooled
colour channels (the image's mean R, G, B: what its head reads), ``[batch, 3]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from nothotdog.contract import (
    FEATURES_NAME,
    HEATMAP_NAME,
    INPUT_NAME,
    INPUT_SIZE,
    OUTPUT_NAME,
    MetaKey,
    ModelSpec,
)

# p(hot_dog) = sigmoid((R - (G + B) / 2) / SCALE), R, G, B being the image's mean channels.
SCALE = 32.0
BLOCK = 32  # heatmap cell, in input pixels
GRID = INPUT_SIZE // BLOCK

TINY_SPEC = ModelSpec(
    name="tiny-redness",
    version="test-1",
    threshold=0.5,
    metrics={"accuracy": 0.931, "n": 1000},
)


def redness_probability(rgb: Sequence[float]) -> float:
    """The model's p(hot_dog) for an image whose mean colour is ``rgb``: the tests' oracle."""
    r, g, b = (float(c) for c in rgb)
    return 1.0 / (1.0 + math.exp(-(r - (g + b) / 2.0) / SCALE))


def build_tiny_model(
    path: str | Path,
    spec: ModelSpec = TINY_SPEC,
    *,
    input_shape: Sequence[int | str] = ("batch", INPUT_SIZE, INPUT_SIZE, 3),
    metadata: Mapping[str, str] | None = None,
    heatmap: bool = False,
    top_half: bool = False,
    features: bool = True,
) -> Path:
    """Write the model to ``path``; ``input_shape``/``metadata`` let tests break the contract.

    ``top_half=True`` judges only the top half of the picture, so orientation changes its answer.
    """
    weights = np.array([[1.0], [-0.5], [-0.5]], dtype=np.float32) / SCALE  # [3, 1]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 2])]
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["pixels"], to=TensorProto.FLOAT),
        *([helper.make_node("Slice", ["pixels", "zero", "half", "rows"], ["top"])]
          if top_half else []),
        helper.make_node("ReduceMean", ["top" if top_half else "pixels"], ["mean_rgb"],
                         axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["mean_rgb", "weights"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p_hot"]),
        helper.make_node("Sub", ["one", "p_hot"], ["p_not"]),
        helper.make_node("Concat", ["p_hot", "p_not"], [OUTPUT_NAME], axis=1),
    ]
    initializers = [
        helper.make_tensor("weights", TensorProto.FLOAT, [3, 1], weights.ravel().tolist()),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
    ]
    if top_half:  # Slice rows [0, INPUT_SIZE / 2) of axis 1
        initializers += [helper.make_tensor(name, TensorProto.INT64, [1], [value])
                         for name, value in (("zero", 0), ("half", INPUT_SIZE // 2), ("rows", 1))]
    if heatmap:
        nodes += [
            helper.make_node("Transpose", ["pixels"], ["pixels_nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("AveragePool", ["pixels_nchw"], ["blocks"],
                             kernel_shape=[BLOCK, BLOCK], strides=[BLOCK, BLOCK]),
            helper.make_node("Mul", ["blocks", "cell_weights"], ["weighted"]),
            helper.make_node("ReduceSum", ["weighted", "channel"], [HEATMAP_NAME], keepdims=0),
        ]  # fmt: skip
        initializers += [
            helper.make_tensor("cell_weights", TensorProto.FLOAT, [1, 3, 1, 1],
                               weights.ravel().tolist()),
            helper.make_tensor("channel", TensorProto.INT64, [1], [1]),
        ]  # fmt: skip
        outputs.append(
            helper.make_tensor_value_info(HEATMAP_NAME, TensorProto.FLOAT, ["batch", GRID, GRID])
        )
    if features:
        nodes.append(helper.make_node("Identity", ["mean_rgb"], [FEATURES_NAME]))
        outputs.append(helper.make_tensor_value_info(FEATURES_NAME, TensorProto.FLOAT,
                                                     ["batch", 3]))  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "tiny_redness",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, list(input_shape))],
        outputs,
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = dict(spec.to_metadata() if metadata is None else metadata)
    if heatmap and metadata is None:
        meta[MetaKey.HEATMAP] = '{"output": "heatmap", "label": "hot_dog"}'
    if features and metadata is None:
        meta[MetaKey.FEATURES] = '{"output": "features", "shape": ["batch", 3]}'
    helper.set_model_props(model, dict(meta))
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
