"""Export defaults in one light module, so the CLI can show them without loading TensorFlow."""

from __future__ import annotations

MIN_OPSET = 17  # the issue asks for 17 or newer
DEFAULT_OPSET = 17
TOLERANCE = 1e-4  # max |Δprobability| Keras vs ONNX float32
DEFAULT_PARITY_IMAGES = 256
DEFAULT_MAX_DROP = 0.5  # accuracy points int8 may lose against float32
DEFAULT_CALIBRATION_IMAGES = 300

# Node groups that can stay float when quantizing, combined with "+" (or "none"):
# "preprocess": everything before the first convolution. After export.fold that is only the
#   mean-colour padding of the image, which feed_uint8 then redoes on uint8, so int8 starts
#   at the image itself;
# "first_conv": block1_conv1 and its ReLU (3 input channels: ~0.6% of VGG16's work);
# "head": global pooling, Dense and softmax after the last convolution.
EXCLUDE_GROUPS = ("preprocess", "first_conv", "head")
# v1 (unfolded graph, runs/v1; 600 stratified val images, 300 calibration images), int8 vs
# float32:                  agreement   mean |Δp|   max |Δp|   accuracy drop
#   none                    100%        0.0075      0.185      0.00 points
#   head                    99.83%      0.0043      0.045      0.17 points
#   head+first_conv         100%        0.0039      0.037      0.00 points
# Keeping the first convolution float then cost a float block1 (4x the activation memory) and
# Transposes inside the stack. With the preprocessing folded, every convolution is int8 from
# the uint8 image; the head stays float, where it halves the probability error.
DEFAULT_EXCLUDE = "preprocess+head"
ACTIVATION_CHOICES = ("uint8", "int8")
DEFAULT_ACTIVATIONS = "uint8"
