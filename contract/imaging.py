"""Bytes to model input: the single decode + resize used by training, export checks, CLI and bot.

Every stage calling this one function is what keeps training and serving pixels identical.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from contract.spec import INPUT_SIZE

try:  # HEIC/HEIF photos from iPhones, when the optional plugin is installed.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - depends on an optional package
    pass

# A cap on decoded pixels, checked from the header before any pixel is decoded. 40 MP covers
# every real camera photo; a 20000x20000 "bomb" would need 1.2 GB as RGB and is refused.
MAX_PIXELS = 40_000_000
BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white, as Telegram does
BILINEAR = Image.Resampling.BILINEAR


class ImageDecodeError(ValueError):
    """The bytes cannot become a model input; the message is safe to show a user."""


class NotAnImage(ImageDecodeError):
    """Empty, corrupt, truncated, or not an image format Pillow can read."""


class ImageTooLarge(ImageDecodeError):
    """More pixels than MAX_PIXELS: refused before decoding to keep memory bounded."""


def decode_image(data: bytes, size: int = INPUT_SIZE, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return a ``uint8 [size, size, 3]`` RGB array, the whole image resized bilinearly."""
    rgb = _decode(data, size, max_pixels, lambda img: img.resize((size, size), BILINEAR))
    return np.asarray(rgb, dtype=np.uint8)


def decode_picture(data: bytes, max_side: int, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The picture as people see it (RGB, upright, its own aspect), at most ``max_side``
    pixels on its longer side: what ``/why`` draws its heatmap on. Same checks and errors
    as ``decode_image``."""

    def shrink(img: Image.Image) -> Image.Image:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return img

    return _decode(data, max_side, max_pixels, shrink)


def _decode(
    data: bytes, draft: int, max_pixels: int, finish: Callable[[Image.Image], Image.Image]
) -> Image.Image:
    """Open, guard, orient and convert to RGB, then ``finish`` (a resize) inside the guard."""
    if not data:
        raise NotAnImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"the image is too large ({width}x{height} pixels)")
            if img.format == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale while staying >= draft: big win
                # on large photos, no effect on the <=256 px training images.
                img.draft("RGB", (draft, draft))
            img.seek(0)  # animated GIF/WebP/PNG: the first frame
            img.load()
            img = ImageOps.exif_transpose(img)
            return finish(_to_rgb(img))
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge("the image is too large") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImage("the file is not an image I can read, or it is damaged") from exc


def load_image_file(path: str | Path, size: int = INPUT_SIZE) -> np.ndarray:
    return decode_image(Path(path).read_bytes(), size=size)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: alpha composited on white, 16-bit and float rescaled."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return img
