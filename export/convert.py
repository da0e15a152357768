"""A trained Keras model to a float32 ONNX graph that follows the contract: one uint8 NHWC
``image`` in, ``probabilities`` out, a dynamic ``batch`` dimension, the preprocessing inside.
The conversion itself is training.int8.keras_to_onnx, which the frozen trunk's cache uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import onnx

from nothotdog.contract import INPUT_NAME, INPUT_SIZE, OUTPUT_NAME
from nothotdog.export.settings import MIN_OPSET
from nothotdog.training.int8 import DEFAULT_OPSET, keras_to_onnx
from nothotdog.training.model import all_layers, float32_copy, low_precision

BATCH_DIM = "batch"


class ConversionError(RuntimeError):
    """The Keras model cannot become a contract-conforming ONNX graph."""


@dataclass
class LoadedModel:
    """The float32 model export converts, and the model as trained when that differed."""

    model: keras.Model
    trained_policy: str  # "float32", or e.g. "mixed_bfloat16" when the file used one
    trained: keras.Model | None  # only when trained_policy is not float32


def load_float32(path: str | Path) -> LoadedModel:
    """Load a .keras file as a model that computes in float32 everywhere (float32_copy)."""
    try:
        trained = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds for a bad file
        raise ConversionError(f"cannot load Keras model {path}: {exc}") from exc
    low = low_precision(trained)
    try:
        model = float32_copy(trained)
    except ValueError as exc:
        raise ConversionError(str(exc)) from exc
    _check_float32(model)
    return LoadedModel(model, ",".join(low) or "float32", trained if low else None)


def _check_float32(model: keras.Model) -> None:
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.dtype_policy.compute_dtype != "float32":
            raise ConversionError(
                f"layer {layer.name} computes in {layer.dtype_policy.compute_dtype}, not float32"
            )
    for weight in model.weights:
        if weight.dtype != "float32":
            raise ConversionError(f"weight {weight.path} is {weight.dtype}, not float32")
    spec = model.inputs[0]
    if len(model.inputs) != 1 or tuple(spec.shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ConversionError(
            f"model input {spec.shape} is not [batch, {INPUT_SIZE}, {INPUT_SIZE}, 3]"
        )
    if spec.dtype != "uint8":
        raise ConversionError(
            f"model input is {spec.dtype}; the contract wants uint8 with preprocessing in the graph"
        )


def to_onnx(model: keras.Model, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Convert, then pin the contract's names and a readable dynamic batch dimension."""
    if opset < MIN_OPSET:
        raise ConversionError(f"opset {MIN_OPSET} or newer is required")
    try:
        proto = keras_to_onnx(model, INPUT_SIZE, opset)
    except Exception as exc:  # tf2onnx surfaces TensorFlow's errors unchanged
        raise ConversionError(f"tf2onnx could not convert the model: {exc}") from exc
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ConversionError("the ONNX graph must have exactly one input and one output")
    _rename_value(graph, graph.input[0].name, INPUT_NAME)
    _rename_value(graph, graph.output[0].name, OUTPUT_NAME)
    for value in (graph.input[0], graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = BATCH_DIM
    tidy(proto)
    onnx.checker.check_model(proto, full_check=True)
    _check_io(proto)
    return proto


def tidy(proto: onnx.ModelProto) -> None:
    """Keep only the opset domains nodes use (onnxruntime's optimiser lists every domain it
    knows) and the oldest IR version they allow: onnx stamps its newest, which older
    onnxruntime releases (the bot accepts >= 1.17) refuse to load."""
    used = {node.domain for node in proto.graph.node} | {""}
    kept = [opset for opset in proto.opset_import if opset.domain in used]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    oldest = onnx.helper.find_min_ir_version_for(kept, ignore_unknown=True)
    proto.ir_version = min(proto.ir_version, oldest)


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new


def _check_io(proto: onnx.ModelProto) -> None:
    """The contract, checked on the file rather than trusted from the converter."""
    (inp,), (out,) = proto.graph.input, proto.graph.output
    in_type, out_type = inp.type.tensor_type, out.type.tensor_type
    in_dims = [d.dim_value or d.dim_param for d in in_type.shape.dim]
    if inp.name != INPUT_NAME or in_type.elem_type != onnx.TensorProto.UINT8:
        raise ConversionError(f"input is {inp.name!r} of type {in_type.elem_type}, not uint8 image")
    if in_dims != [BATCH_DIM, INPUT_SIZE, INPUT_SIZE, 3]:
        raise ConversionError(
            f"input shape {in_dims} is not [batch, {INPUT_SIZE}, {INPUT_SIZE}, 3]"
        )
    if out.name != OUTPUT_NAME or out_type.elem_type != onnx.TensorProto.FLOAT:
        raise ConversionError(f"output is {out.name!r} of type {out_type.elem_type}, not float32")
