"""The smallest Keras model with the layers export looks for (preprocessing, ``block*_conv1``
convolutions, global pooling, dropout, a softmax ``probabilities`` layer): tests set its
weights by hand so that its verdict follows the photo's colours."""

from __future__ import annotations

import keras

from nothotdog.contract import INPUT_NAME, INPUT_SIZE, OUTPUT_NAME
from nothotdog.training.model import VGGPreprocess


def vgg_shaped(filters: int, classes: int, name: str) -> keras.Model:
    """uint8 image -> VGGPreprocess -> two small convs -> GAP -> Dropout -> softmax Dense."""
    image = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), dtype="uint8", name=INPUT_NAME)
    x = VGGPreprocess(name="vgg_preprocess")(image)
    x = keras.layers.Conv2D(filters, 3, strides=4, padding="same", activation="relu",
                            name="block1_conv1")(x)  # fmt: skip
    x = keras.layers.MaxPooling2D(2, name="block1_pool")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="block2_conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dropout(0.5, name="head_dropout")(x)
    out = keras.layers.Dense(classes, activation="softmax", dtype="float32", name=OUTPUT_NAME)(x)
    return keras.Model(image, out, name=name)
