"""Export defaults in one light module, so the CLI can show them without loading TensorFlow."""

from __future__ import annotations

MIN_OPSET = 17  # the issue asks for 17 or newer
DEFAULT_OPSET = 17
TOLERANCE = 1e-4  # max |Δprobability| Keras vs ONNX float32
DEFAULT_PARITY_IMAGES = 256
DEFAULT_MAX_DROP = 0.5  # accuracy points int8 may lose against float32
DEFAULT_CALIBRATION_IMAGES = 300

# Which nodes stay float when quantizing. "head": global pooling, Dense and softmax after the
# last convolution; "preprocess": cast, BGR flip and mean subtraction before the first one.
EXCLUDE_CHOICES = ("none", "head", "preprocess", "head+preprocess")
DEFAULT_EXCLUDE = "head"
ACTIVATION_CHOICES = ("uint8", "int8")
DEFAULT_ACTIVATIONS = "uint8"
# entropy and percentile keep whole activation tensors of every calibration batch in memory.
METHOD_CHOICES = ("minmax", "entropy", "percentile")
DEFAULT_METHOD = "minmax"
