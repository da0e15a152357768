"""Export's own defaults in one light module, so the CLI shows them without loading TensorFlow
(the quantization defaults are training.int8's: the trunk cache uses them too)."""

from __future__ import annotations

MIN_OPSET = 17  # the oldest opset the export and its checks have been run with
TOLERANCE = 1e-4  # max |Δprobability| Keras vs ONNX float32
DEFAULT_PARITY_IMAGES = 256
DEFAULT_MAX_DROP = 0.5  # accuracy points int8 may lose against float32
