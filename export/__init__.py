"""Keras run folder in, the ONNX file the bot runs out: converted, checked, optionally quantized.

TensorFlow, tf2onnx and onnxruntime's quantization tools live here (and in training/) only; the
bot and the contract never import them. The defaults below live in this light module, so the
CLI shows them without loading TensorFlow (the quantization defaults are training.int8's).
"""

MIN_OPSET = 17  # the oldest opset the export and its checks have been run with
TOLERANCE = 1e-4  # max |Δprobability| Keras vs ONNX float32
DEFAULT_PARITY_IMAGES = 256
DEFAULT_MAX_DROP = 0.5  # accuracy points int8 may lose against float32
