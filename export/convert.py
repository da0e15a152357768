"""A trained Keras model to the ONNX graph the bot runs: float32, following the contract (one
uint8 NHWC ``image`` in, ``probabilities`` out, a dynamic ``batch`` dimension), with VGG16's
preprocessing folded into the first convolution so that int8 starts at the uint8 image. The
conversion itself is training.int8.keras_to_onnx, which the frozen trunk's cache uses too.

The fold: tf2onnx writes the in-graph preprocessing as Cast -> Transpose -> ReverseSequence
(RGB to BGR) -> Sub (ImageNet mean) -> Transpose -> first Conv. Both steps are affine per
channel, so the first convolution can absorb them exactly: permute its input channels and move
the mean into its bias. One thing does not commute: the convolution pads with zeros, and a zero
after the mean subtraction is the mean colour before it. So the image is padded with the mean
colour first and the convolution pads nothing, which keeps the fold exact at the borders too.
After quantization, ``feed_uint8`` replaces the float padding and the first QuantizeLinear
(scale 1, zero point 0: the identity on pixel values) with the same padding done on uint8, so
onnxruntime runs every convolution in int8 straight from the image, with no Cast or Transpose
inside the convolution stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import onnx
from onnx import helper, numpy_helper

from nothotdog.contract import IMAGENET_MEAN_BGR, INPUT_NAME, INPUT_SIZE, OUTPUT_NAME
from nothotdog.export import MIN_OPSET
from nothotdog.training.int8 import DEFAULT_OPSET, ancestors, keras_to_onnx
from nothotdog.training.model import all_layers, float32_copy, low_precision

BATCH_DIM = "batch"
PADDED = "image_padded"  # the float tensor the first convolution reads after the fold
_MEAN_RGB = tuple(reversed(IMAGENET_MEAN_BGR))
_PREPROCESS_OPS = frozenset(
    {"Cast", "Transpose", "Shape", "Gather", "Expand", "ReverseSequence", "Sub", "Slice",
     "Identity", "Unsqueeze", "Squeeze", "Concat", "Split"}
)  # fmt: skip


class ConversionError(RuntimeError):
    """The Keras model cannot become a contract-conforming ONNX graph."""


class FoldError(ValueError):
    """The graph does not look like VGGPreprocess followed by a 3x3 convolution."""


@dataclass
class Float32Model:
    """The float32 model export converts, and the model as trained when that differed."""

    model: keras.Model
    trained_policy: str  # "float32", or e.g. "mixed_bfloat16" when the file used one
    trained: keras.Model | None  # only when trained_policy is not float32


def load_float32(path: str | Path) -> Float32Model:
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
    return Float32Model(model, ",".join(low) or "float32", trained if low else None)


def _check_float32(model: keras.Model) -> None:
    """What the file will hold: float32 everywhere, one uint8 [batch, size, size, 3] input."""
    low = [f"layer {x.name} ({x.dtype_policy.compute_dtype})" for x in all_layers(model)
           if not isinstance(x, keras.layers.InputLayer)
           and x.dtype_policy.compute_dtype != "float32"]  # fmt: skip
    low += [f"weight {w.path} ({w.dtype})" for w in model.weights if w.dtype != "float32"]
    if low:
        raise ConversionError(f"not float32: {', '.join(low)}")
    spec = model.inputs[0]
    if len(model.inputs) != 1 or tuple(spec.shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ConversionError(f"model input {spec.shape} is not [batch, {INPUT_SIZE}, "
                              f"{INPUT_SIZE}, 3]")  # fmt: skip
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


# --- folding the preprocessing -------------------------------------------------------------

def _attr(node: onnx.NodeProto, name: str, default=None):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def fold_preprocessing(proto: onnx.ModelProto) -> None:
    """Rewrite ``proto`` in place: the image goes straight (mean-padded) into the first conv."""
    graph = proto.graph
    conv = next((n for n in graph.node if n.op_type == "Conv"), None)
    if conv is None:
        raise FoldError("no Conv node")
    removed_at = ancestors(graph.node, [conv.input[0]])
    removed = [graph.node[i] for i in sorted(removed_at)]
    if not removed or any(n.op_type not in _PREPROCESS_OPS for n in removed):
        raise FoldError(f"unexpected ops before the first Conv: {[n.op_type for n in removed]}")
    if any(INPUT_NAME not in n.input for n in removed if n.op_type == "Cast"):
        raise FoldError("the preprocessing does not start at the image")
    produced = {out for n in removed for out in n.output}
    for i, node in enumerate(graph.node):
        if i not in removed_at and produced & (set(node.input) - {conv.input[0]}):
            raise FoldError(f"{node.name} reads a preprocessing tensor")
    inits = {t.name: t for t in graph.initializer}
    weight = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
    if weight.shape[1] != 3:
        raise FoldError(f"first Conv has {weight.shape[1]} input channels, not 3")
    dims = graph.input[0].type.tensor_type.shape.dim
    pads = _explicit_pads(conv, weight.shape[2:], (dims[1].dim_value, dims[2].dim_value))
    bias = np.zeros(weight.shape[0])
    if len(conv.input) > 2 and conv.input[2]:
        bias = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
    # BGR-in weights -> RGB-in weights; x_bgr - mean enters linearly, so it leaves via the bias.
    folded_w = weight[:, ::-1]
    folded_b = bias - np.einsum("ocij,c->o", weight, np.asarray(IMAGENET_MEAN_BGR))
    w_name, b_name = f"{conv.name}_folded_W", f"{conv.name}_folded_B"
    graph.initializer.extend([numpy_helper.from_array(folded_w.astype(np.float32), w_name),
                              numpy_helper.from_array(folded_b.astype(np.float32), b_name)])
    nodes = _padded_pixels(graph, PADDED, pads, float_pixels=True)
    conv.input[:] = [PADDED, w_name, b_name]
    kept = [onnx.AttributeProto.FromString(a.SerializeToString()) for a in conv.attribute
            if a.name not in ("pads", "auto_pad")]  # fmt: skip
    del conv.attribute[:]
    conv.attribute.extend(kept)
    _replace_nodes(graph, removed_at, nodes)


def _explicit_pads(conv: onnx.NodeProto, kernel, size: tuple[int, int]) -> list[int]:
    """[top, left, bottom, right] the convolution pads, whether written out or SAME_*."""
    auto = _attr(conv, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        return list(_attr(conv, "pads", [0, 0, 0, 0]))
    if auto == "VALID":
        return [0, 0, 0, 0]
    strides = list(_attr(conv, "strides", [1, 1]))
    begin, end = [], []
    for n, k, st in zip(size, kernel, strides, strict=True):
        total = max((-(-n // st) - 1) * st + int(k) - n, 0)
        small = total // 2
        begin.append(small if auto == "SAME_UPPER" else total - small)
        end.append(total - begin[-1])
    return begin + end


def _padded_pixels(graph: onnx.GraphProto, out: str, pads: list[int],
                   float_pixels: bool) -> list[onnx.NodeProto]:  # fmt: skip
    """The uint8 NHWC image -> NCHW pixels padded by ``pads`` with the mean colour, per channel
    (their constants added to ``graph``).

    ONNX Pad takes one constant for all channels, so each channel is padded on its own.
    Float pixels keep the exact mean; uint8 pixels round it (what a QuantizeLinear with
    scale 1 would do to the float version).
    """
    prefix = "fold_f" if float_pixels else "fold_u8"
    nchw = f"{prefix}_nchw"
    nodes = [helper.make_node("Transpose", [INPUT_NAME], [nchw], perm=[0, 3, 1, 2], name=nchw)]
    source = nchw
    if float_pixels:
        source = f"{prefix}_cast"
        nodes.append(helper.make_node("Cast", [nchw], [source], to=onnx.TensorProto.FLOAT,
                                      name=source))  # fmt: skip
    channels = [f"{prefix}_c{c}" for c in range(3)]
    nodes.append(helper.make_node("Split", [source], channels, axis=1, name=f"{prefix}_split"))
    pads_name = f"{prefix}_pads"
    top, left, bottom, right = pads
    graph.initializer.append(numpy_helper.from_array(
        np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), pads_name))  # fmt: skip
    padded = []
    for c, name in enumerate(channels):
        value = (np.float32(_MEAN_RGB[c]) if float_pixels else np.uint8(round(_MEAN_RGB[c])))
        const = f"{prefix}_mean{c}"
        graph.initializer.append(numpy_helper.from_array(np.array(value), const))
        padded.append(f"{name}_padded")
        nodes.append(helper.make_node("Pad", [name, pads_name, const], [padded[-1]],
                                      mode="constant", name=padded[-1]))  # fmt: skip
    nodes.append(helper.make_node("Concat", padded, [out], axis=1, name=f"{prefix}_concat"))
    return nodes


def feed_uint8(proto: onnx.ModelProto) -> None:
    """In a quantized folded model, let the int8 section read the uint8 image directly: the
    float padding feeds one QuantizeLinear of scale 1 and zero point 0, which maps integer
    pixel values to themselves, so that chain becomes the same padding done on uint8."""
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    quant = [i for i, n in enumerate(graph.node)
             if n.op_type == "QuantizeLinear" and n.input[0] == PADDED]  # fmt: skip
    if len(quant) != 1:
        raise FoldError("expected one QuantizeLinear on the padded image")
    q = graph.node[quant[0]]
    scale = numpy_helper.to_array(inits[q.input[1]])
    zero = numpy_helper.to_array(inits[q.input[2]])
    if float(scale) != 1.0 or int(zero) != 0 or zero.dtype != np.uint8:
        raise FoldError(f"the image's QuantizeLinear is scale {scale}, zero point {zero}")
    removed = ancestors(graph.node, [PADDED]) | set(quant)
    padding = numpy_helper.to_array(inits["fold_f_pads"]).tolist()
    pads = [padding[2], padding[3], padding[6], padding[7]]
    nodes = _padded_pixels(graph, q.output[0], pads, float_pixels=False)
    _replace_nodes(graph, removed, nodes)


def _replace_nodes(graph: onnx.GraphProto, removed: set[int], first: list) -> None:
    """Drop the nodes at ``removed``, put ``first`` ahead of the rest, drop unused constants."""
    keep = [onnx.NodeProto.FromString(n.SerializeToString()) for i, n in enumerate(graph.node)
            if i not in removed]  # fmt: skip
    del graph.node[:]
    graph.node.extend(first + keep)
    used = {name for n in graph.node for name in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
