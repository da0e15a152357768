"""The model contract: the facts that training, export and the bot must agree on.

This package imports only numpy and Pillow, so the bot can use it without TensorFlow.
"""

from nothotdog.contract.imaging import (
    ImageDecodeError,
    ImageTooLarge,
    NotAnImage,
    OpenedImage,
    decode_image,
    finish_decode,
    load_image_file,
    open_image,
)
from nothotdog.contract.spec import (
    DEFAULT_THRESHOLD,
    FEATURES_NAME,
    HEATMAP_NAME,
    HOTDOG_DISPLAY,
    IMAGENET_MEAN_BGR,
    INPUT_NAME,
    INPUT_SIZE,
    LABELS,
    OUTPUT_NAME,
    POSITIVE_LABEL,
    RESIZE_METHOD,
    MetaKey,
    ModelSpec,
    default_display,
)

__all__ = [
    "DEFAULT_THRESHOLD", "FEATURES_NAME", "HEATMAP_NAME", "HOTDOG_DISPLAY", "IMAGENET_MEAN_BGR",
    "INPUT_NAME", "INPUT_SIZE", "LABELS", "OUTPUT_NAME", "POSITIVE_LABEL", "RESIZE_METHOD",
    "ImageDecodeError", "ImageTooLarge", "MetaKey", "ModelSpec", "NotAnImage", "OpenedImage",
    "decode_image", "default_display", "finish_decode", "load_image_file", "open_image",
]  # fmt: skip
