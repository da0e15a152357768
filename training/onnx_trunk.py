"""The frozen trunk run as int8 onnxruntime, to fill the feature cache fast and as the bot sees it.

Measured on a 2-core AMD EPYC (AVX-512 VNNI, no AMX): VGG16 up to ``block4_pool`` costs 260 ms
per photo in Keras (float32; 279 ms under mixed_bfloat16), 210 ms in onnxruntime float32 and
about 97 ms in onnxruntime int8. The cache holds every training photo, so this is the
difference between a run that fits in an hour and one that does not. The shipped model is
int8 too, calibrated on the same 300 training photos, so the layers trained on top learn from
activations close to those the bot will compute. (The export folds the preprocessing into the
first convolution and quantizes it too; this trunk keeps that convolution float, as the
first v2 run did: changing it would change every cached feature.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nothotdog.contract import INPUT_NAME, INPUT_SIZE
from nothotdog.contract.dataset import Example
from nothotdog.export.settings import DEFAULT_OPSET

# The cast, flip and mean subtraction and the first convolution stay float.
TRUNK_FLOAT = "preprocess+first_conv"


def int8_trunk(
    trunk, calibration: Sequence[Example], images: int, workdir: Path, seed: int = 0,
    size: int = INPUT_SIZE,
) -> Callable[[np.ndarray], np.ndarray]:
    """Convert ``trunk`` (a Keras model, uint8 image in) to ONNX, quantize it, return predict."""
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    from nothotdog.export.images import stratified_sample
    from nothotdog.export.quantize import ExampleReader, QuantSettings, quantize_int8

    workdir.mkdir(parents=True, exist_ok=True)
    float_path, int8_path = workdir / "trunk-float32.onnx", workdir / "trunk-int8.onnx"
    signature = (tf.TensorSpec([None, size, size, 3], tf.uint8, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(trunk, input_signature=signature, opset=DEFAULT_OPSET)
    float_path.write_bytes(proto.SerializeToString())
    reader = ExampleReader(stratified_sample(calibration, images, seed), size=size)
    int8, _ = quantize_int8(float_path, reader, QuantSettings(exclude=TRUNK_FLOAT), workdir)
    onnx.save(int8, str(int8_path))
    session = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: batch})[0].astype(np.float16)

    return predict
