"""The classifier's architecture, and how it splits into a frozen trunk and a trainable top."""

from __future__ import annotations

import keras

from nothotdog.contract import INPUT_NAME, INPUT_SIZE, OUTPUT_NAME
from nothotdog.training.layers import VGGPreprocess

HEAD_POOL, HEAD_DROPOUT = "head_pool", "head_dropout"


def build_backbone(input_size: int = INPUT_SIZE) -> keras.Model:
    """VGG16's convolutional base with no weights, as Keras defines it (for reading .h5 files)."""
    return keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(input_size, input_size, 3)
    )


def add_head(features, num_classes: int, dropout: float):
    x = keras.layers.GlobalAveragePooling2D(name=HEAD_POOL)(features)
    x = keras.layers.Dropout(dropout, name=HEAD_DROPOUT)(x)
    # float32 softmax even under mixed precision: probabilities must be exact for export parity.
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=OUTPUT_NAME)(
        x
    )


def build_classifier(num_classes: int, dropout: float, input_size: int = INPUT_SIZE) -> keras.Model:
    """uint8 RGB image in (the contract), class probabilities out; preprocessing in the graph.

    VGG16 is built on the preprocessed tensor, so its layers sit flat in this one graph and
    ``split_at`` can cut it anywhere. Its weights are filled by ``training.weights``.
    """
    image = keras.Input((input_size, input_size, 3), dtype="uint8", name=INPUT_NAME)
    x = VGGPreprocess(name="vgg_preprocess")(image)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_tensor=x)
    return keras.Model(image, add_head(vgg.output, num_classes, dropout), name="nothotdog_vgg16")


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
