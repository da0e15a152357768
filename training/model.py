"""The classifier: its preprocessing layer, its architecture, how it splits into a frozen trunk
and a trainable top, and its float32 copy for saving and for ONNX."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np

from nothotdog.contract import IMAGENET_MEAN_BGR, INPUT_NAME, INPUT_SIZE, OUTPUT_NAME

HEAD_POOL, HEAD_DROPOUT = "head_pool", "head_dropout"
LOW_PRECISION = frozenset({"mixed_bfloat16", "mixed_float16", "bfloat16", "float16"})


@keras.saving.register_keras_serializable(package="nothotdog")
class VGGPreprocess(keras.layers.Layer):
    """uint8 RGB in, VGG16 "caffe" input out (float, BGR, ImageNet mean removed).

    Living in the graph, it travels into the ONNX file, so the bot only decodes and resizes.
    Saved files find it by its registered name, ``nothotdog>VGGPreprocess``, whatever module
    they name.
    """

    def __init__(self, **kwargs):
        # float32 even under mixed precision: the mean subtraction stays exact.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        x = keras.ops.flip(keras.ops.cast(inputs, "float32"), axis=-1)  # RGB -> BGR
        return x - keras.ops.convert_to_tensor(IMAGENET_MEAN_BGR, dtype="float32")

    def compute_output_shape(self, input_shape):
        return input_shape


def build_backbone(input_size: int = INPUT_SIZE) -> keras.Model:
    """VGG16's convolutional base with no weights, as Keras defines it (for reading .h5 files)."""
    return keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(input_size, input_size, 3)
    )


def build_classifier(num_classes: int, dropout: float, input_size: int = INPUT_SIZE) -> keras.Model:
    """uint8 RGB image in (the contract), class probabilities out; preprocessing in the graph.

    VGG16 is built on the preprocessed tensor, so its layers sit flat in this one graph and
    ``split_at`` can cut it anywhere. Its weights are filled by ``training.weights``.
    """
    image = keras.Input((input_size, input_size, 3), dtype="uint8", name=INPUT_NAME)
    x = VGGPreprocess(name="vgg_preprocess")(image)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_tensor=x)
    x = keras.layers.GlobalAveragePooling2D(name=HEAD_POOL)(vgg.output)
    x = keras.layers.Dropout(dropout, name=HEAD_DROPOUT)(x)
    # float32 softmax even under mixed precision: probabilities must be exact for export parity.
    out = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=OUTPUT_NAME)
    return keras.Model(image, out(x), name="nothotdog_vgg16")


def split_at(classifier: keras.Model, cut: str) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """(trunk: image -> ``cut`` output, the conv layers between ``cut`` and the head).

    The trunk stays frozen, so its outputs can be computed once and cached; only the layers
    after it run in each fine-tuning epoch. The pieces share the classifier's layer objects,
    so training them trains the classifier that is saved.
    """
    names = [layer.name for layer in classifier.layers]
    if cut not in names or names.index(cut) >= names.index(HEAD_POOL):
        choices = names[2 : names.index(HEAD_POOL)]
        raise ValueError(f"no backbone layer {cut!r}; choose one of {choices}")
    trunk = keras.Model(classifier.input, classifier.get_layer(cut).output, name="trunk")
    return trunk, classifier.layers[names.index(cut) + 1 : names.index(HEAD_POOL)]


def head_layers(classifier: keras.Model) -> list[keras.layers.Layer]:
    return [classifier.get_layer(name) for name in (HEAD_POOL, HEAD_DROPOUT, OUTPUT_NAME)]


def stack(layers: list[keras.layers.Layer], x):
    for layer in layers:
        x = layer(x)
    return x


def all_layers(model: keras.Layer) -> list[keras.Layer]:
    """Layers of nested models too (a VGG16 base may sit inside as one layer)."""
    return [x for layer in getattr(model, "layers", []) for x in (layer, *all_layers(layer))]


def low_precision(model: keras.Model) -> list[str]:
    """The mixed or half precision policies ``model``'s layers compute in, if any."""
    return sorted({layer.dtype_policy.name for layer in all_layers(model)} & LOW_PRECISION)


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` computing in float32 everywhere, with the same weights.

    A model built under mixed_bfloat16 keeps that policy per layer in its config, so setting
    the global policy is not enough: rebuild from a config with each low-precision policy
    replaced, then copy the (already float32) variables over. Saving, export and the ONNX
    trunk need it: onnxruntime's CPU convolutions take no bfloat16, and a saved file must not
    pass the training precision on. Always a new model, outside any distribution strategy.
    """
    with precision_policy("float32"):
        clean = model.__class__.from_config(_float32_config(model.get_config()))
    weights = model.get_weights()
    if [w.shape for w in clean.get_weights()] != [w.shape for w in weights]:
        raise ValueError("the float32 rebuild does not match the model's weights")
    clean.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return clean


@contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Keras's precision policy is global: set it for one run and put the old one back."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


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
