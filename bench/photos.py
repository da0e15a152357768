"""Photo-like JPEGs made on the fly, so the benchmarks need no data set and no network.

Smooth colour gradients, a few soft blobs and sensor-like noise, JPEG-encoded at the quality
Telegram uses: they decode like real photos (file size, entropy, chroma subsampling), which
flat colours or pure noise do not.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Telegram's largest PhotoSize is 1280 px on the long side; it also offers 90, 320 and 800.
FULL_SIZE = (1280, 960)
SMALL_SIZE = (320, 240)  # the smallest PhotoSize whose short side covers 224 px
JPEG_QUALITY = 87  # about what Telegram re-encodes photos at


def photo_array(seed: int = 0, size: tuple[int, int] = FULL_SIZE) -> np.ndarray:
    """``uint8 [height, width, 3]``: gradients + blobs + noise, deterministic per seed."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= width
    y /= height
    corners = rng.uniform(20, 235, (4, 3)).astype(np.float32)
    img = (
        corners[0] * ((1 - x) * (1 - y))[..., None]
        + corners[1] * (x * (1 - y))[..., None]
        + corners[2] * ((1 - x) * y)[..., None]
        + corners[3] * (x * y)[..., None]
    )
    for _ in range(6):  # soft blobs: "objects" with edges of varying sharpness
        cx, cy = rng.uniform(0, 1, 2)
        radius = rng.uniform(0.05, 0.3)
        sharpness = rng.uniform(4, 30)
        dist = np.sqrt((x - cx) ** 2 + ((y - cy) * height / width) ** 2)
        mask = 1 / (1 + np.exp((dist - radius) * sharpness * 10))
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        img = img * (1 - mask[..., None]) + colour * mask[..., None]
    # Texture at a coarser scale (it survives the shrink to 320 px, as real detail does),
    # then fine sensor noise.
    coarse = rng.normal(0, 14, (height // 6, width // 6, 3)).astype(np.float32)
    texture = np.stack([np.asarray(Image.fromarray(coarse[..., c], mode="F").resize(
        (width, height), Image.Resampling.BILINEAR)) for c in range(3)], axis=-1)
    img += texture + rng.normal(0, 5, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(array: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def telegram_photo(seed: int = 0) -> tuple[bytes, bytes]:
    """(1280 px JPEG, 320 px JPEG of the same picture), as Telegram would offer both."""
    full = photo_array(seed, FULL_SIZE)
    small = Image.fromarray(full).resize(SMALL_SIZE, Image.Resampling.LANCZOS)
    return jpeg(full), jpeg(np.asarray(small))


def model_inputs(n: int, seed: int = 0, size: int = 224) -> np.ndarray:
    """``uint8 [n, size, size, 3]`` decoded through the bot's own decode path."""
    from nothotdog.contract import decode_image

    return np.stack([decode_image(jpeg(photo_array(seed + i, (size * 2, size * 2))), size=size)
                     for i in range(n)])
