"""Image bytes made on the fly, in every format and oddity the decoder must handle."""

from __future__ import annotations

import io

from PIL import Image

# Mean colours with a known verdict from tests.tinymodel (checked through JPEG and PNG).
RED = (200, 90, 88)  # p(hot_dog) = 0.97 -> "🌭 Hotdog! (97%)"
GREEN = (60, 130, 118)  # p(hot_dog) = 0.12 -> "🚫 Not hotdog (88%)"
RED_TEXT = "🌭 Hotdog! (97%)"
GREEN_TEXT = "🚫 Not hotdog (88%)"


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def solid(
    color: tuple[int, ...] = RED, size: tuple[int, int] = (640, 480), fmt: str = "JPEG"
) -> bytes:
    mode = "RGBA" if len(color) == 4 else "RGB"
    params = {"quality": 90} if fmt == "JPEG" else {}
    return encode(Image.new(mode, size, color), fmt, **params)
