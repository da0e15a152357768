"""Keras model to a float32 ONNX graph whose input is the contract's uint8 NHWC image.

Conversion path: ``tf2onnx.convert.from_keras`` with an explicit ``input_signature``. With
Keras 3, tf2onnx cannot read the model's input specs itself, but given a uint8
``TensorSpec([None, 224, 224, 3], name="image")`` it traces the model through a
``tf.function`` and converts that concrete function. This was checked with Keras 3 and a full
VGG16 here, avoids writing a SavedModel to disk, keeps the graph's input uint8 (so the
VGGPreprocess cast, BGR flip and mean subtraction travel into the file) and leaves the batch
dimension dynamic.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

import nothotdog.training.layers  # noqa: F401  registers VGGPreprocess for deserialisation
from nothotdog.contract import INPUT_NAME, INPUT_SIZE, OUTPUT_NAME
from nothotdog.export.settings import DEFAULT_OPSET, MIN_OPSET

BATCH_DIM = "batch"
LOW_PRECISION = frozenset({"mixed_bfloat16", "mixed_float16", "bfloat16", "float16"})


class ConversionError(RuntimeError):
    """The Keras model cannot become a contract-conforming ONNX graph."""


@dataclass
class LoadedModel:
    """The float32 model export converts, and the model as trained when that differed."""

    model: keras.Model
    trained_policy: str  # "float32", or e.g. "mixed_bfloat16" when the file used one
    trained: keras.Model | None  # only when trained_policy is not float32


def load_float32(path: str | Path) -> LoadedModel:
    """Load a .keras file and make sure every layer computes in float32.

    A model trained under mixed_bfloat16 keeps that policy per layer in its config, so setting
    the global policy is not enough: rebuild from a config with each low-precision policy
    replaced, then copy the (already float32) variables over.
    """
    keras.config.set_dtype_policy("float32")
    try:
        trained = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds for a bad file
        raise ConversionError(f"cannot load Keras model {path}: {exc}") from exc
    policies = {layer.dtype_policy.name for layer in _all_layers(trained)}
    low = sorted(policies & LOW_PRECISION)
    if not low:
        _check_float32(trained)
        return LoadedModel(model=trained, trained_policy="float32", trained=None)
    config = _float32_config(trained.get_config())
    model = trained.__class__.from_config(config)
    weights = trained.get_weights()
    if [w.shape for w in model.get_weights()] != [w.shape for w in weights]:
        raise ConversionError("rebuilt float32 model does not match the trained weights")
    model.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    _check_float32(model)
    return LoadedModel(model=model, trained_policy=",".join(low), trained=trained)


def _all_layers(model: keras.Layer) -> list[keras.Layer]:
    """Layers of nested models too (a VGG16 base may sit inside as one layer)."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(_all_layers(layer))
    return found


def _float32_config(config: Any) -> Any:
    config = copy.deepcopy(config)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                inner = node.get("config", {})
                if inner.get("name") in LOW_PRECISION:
                    inner["name"] = "float32"
            for key, value in node.items():
                if key == "dtype" and isinstance(value, str) and value in LOW_PRECISION:
                    node[key] = "float32"
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return config


def _check_float32(model: keras.Model) -> None:
    for layer in _all_layers(model):
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
    signature = (tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 3], tf.uint8, name=INPUT_NAME),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
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
