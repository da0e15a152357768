"""Continuing a finished run: from its folder, its model.keras, or an exported .onnx file (a
shipped model whose Keras run was not kept); several runs are averaged into a soup."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper

from nothotdog.contract import OUTPUT_NAME, layout

if TYPE_CHECKING:  # keras costs seconds of import; the classifier arrives built
    import keras


def start_from(classifier: keras.Model, runs: tuple[Path, ...], top: list[str]) -> None:
    """Continue finished runs: the trunk is unchanged (so is the cache); the top and head start
    where they ended instead of from the ImageNet block and a new head. A run is its folder,
    its model.keras, or an exported .onnx file (its ``top`` layers and head read back, for a
    shipped model whose Keras run was not kept).

    Several runs are averaged weight by weight, a uniform "model soup" (Wortsman et al., 2022):
    runs fine-tuned from one parent stay close enough that their mean works as one model, at
    one model's inference cost. Run with no epochs, it is just the soup.
    """
    weights = []
    for run in map(Path, runs):
        if run.suffix == ".onnx":
            load_top_from_onnx(classifier, run, top)
        else:
            classifier.load_weights(run / layout.MODEL_FILE if run.is_dir() else run)
        weights.append(classifier.get_weights())
    if len(weights) > 1:
        mean = [np.mean(w, axis=0, dtype=w[0].dtype) for w in zip(*weights, strict=True)]
        classifier.set_weights(mean)
    print(f"continuing from {' + '.join(map(str, runs))}")


def load_top_from_onnx(classifier: keras.Model, path: Path, top: list[str]) -> None:
    """Continue an exported model whose Keras run was not kept: the named conv layers and the
    output layer take the file's weights, int8 ones dequantized (per-channel scale times the
    stored integers). Only layers above the first convolution can come back this way: the
    export folds the preprocessing into that one."""
    graph = onnx.load(str(path)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    made_by = {out: node for node in graph.node for out in node.output}

    def value(name: str) -> np.ndarray:
        if name in arrays:
            return arrays[name]
        node = made_by[name]
        if node.op_type != "DequantizeLinear":
            raise ValueError(f"{path}: {name} is made by {node.op_type}, not a weight")
        q, scale, zero = (arrays[i] for i in node.input)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        shape[axis if scale.ndim else 0] = -1
        return (q.astype(np.float32) - zero.reshape(shape)) * scale.reshape(shape)

    def bias(node: onnx.NodeProto, size: int) -> np.ndarray:
        """The node's own bias input (Conv, Gemm), else an Add of a constant to its output
        (MatMul + Add as tf2onnx writes it unoptimized), else zero (a zero bias is dropped)."""
        if len(node.input) > 2:
            return value(node.input[2])
        for user in graph.node:
            if user.op_type == "Add" and node.output[0] in user.input:
                (other,) = (i for i in user.input if i != node.output[0])
                if other in arrays or other in made_by:
                    return value(other)
        return np.zeros(size, np.float32)

    wanted = [*top, OUTPUT_NAME]
    by_layer = {}
    for node in graph.node:  # tf2onnx names a layer's nodes MODEL/LAYER[_N]/OP
        for layer in wanted:
            if (node.op_type in ("Conv", "Gemm", "MatMul")
                    and re.search(rf"/{layer}(_\d+)?/", node.name)):  # fmt: skip
                by_layer[layer] = node
    missing = [name for name in wanted if name not in by_layer]
    if missing:
        raise ValueError(f"{path}: no weights for {missing}")
    for layer in top:
        node = by_layer[layer]
        w = value(node.input[1])
        classifier.get_layer(layer).set_weights([w.transpose(2, 3, 1, 0),  # OIHW -> HWIO
                                                 bias(node, w.shape[0])])  # fmt: skip
    head = by_layer[OUTPUT_NAME]
    kernel = value(head.input[1])
    classifier.get_layer(OUTPUT_NAME).set_weights([kernel, bias(head, kernel.shape[1])])
