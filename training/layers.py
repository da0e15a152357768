"""The preprocessing layer that puts the contract's normalisation inside the model graph."""

from __future__ import annotations

import keras

from nothotdog.contract import IMAGENET_MEAN_BGR


@keras.saving.register_keras_serializable(package="nothotdog")
class VGGPreprocess(keras.layers.Layer):
    """uint8 RGB in, VGG16 "caffe" input out (float, BGR, ImageNet mean removed).

    Living in the graph, it travels into the ONNX file, so the bot only decodes and resizes.
    """

    def __init__(self, **kwargs):
        # float32 even under mixed precision: the mean subtraction stays exact.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        x = keras.ops.cast(inputs, "float32")
        x = keras.ops.flip(x, axis=-1)  # RGB -> BGR
        mean = keras.ops.convert_to_tensor(IMAGENET_MEAN_BGR, dtype="float32")
        return x - mean

    def compute_output_shape(self, input_shape):
        return input_shape
