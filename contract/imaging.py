"""Bytes to model input: the single decode + resize used by training, export checks, CLI and bot.

Every stage calling this one function is what keeps training and serving pixels identical.
The bot uses the two halves, :func:`open_image` (header only, with the memory the decode will
need) and :func:`finish_decode`, so it can budget memory before a pixel is decoded.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from nothotdog.contract.spec import INPUT_SIZE

try:  # HEIC/HEIF photos from iPhones, when the optional plugin is installed.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - depends on an optional package
    pass

# A cap on decoded pixels, checked from the header before any pixel is decoded. 40 MP covers
# every real camera photo; a 20000x20000 "bomb" would need 1.2 GB as RGB and is refused.
# Pillow's own check (Image.MAX_IMAGE_PIXELS, 89 MP) sits above it: Pillow refuses past twice
# that by itself, and only warns in between, for images this cap refuses anyway.
MAX_PIXELS = 40_000_000
BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white, as Telegram does

Buffer = bytes | bytearray | memoryview

# Bytes per pixel Pillow stores for a mode (RGB is kept as 4 bytes), and what turning that mode
# into 8-bit RGB adds on top (see _to_rgb): a copy, a white canvas and its alpha mask, three
# float64 arrays for 16-bit and float pixels. Other modes: one convert("RGB"), 4 bytes.
_STORED = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_TO_RGB = {"RGB": 0, "RGBA": 5, "P": 9, "LA": 9, "PA": 9, "La": 9, "RGBa": 9,
           "I;16": 30, "I;16B": 30, "I;16L": 30, "I;16N": 30, "I": 30, "F": 30}
_ORIENTATION = 0x0112  # EXIF: a value other than 1 means exif_transpose makes a rotated copy
# Plugins that read the whole file into a second buffer before decoding (libtiff without a
# file descriptor, libwebp, libheif, libavif).
_READS_WHOLE_FILE = frozenset({"TIFF", "WEBP", "HEIF", "AVIF"})
# Libraries that decode into buffers of their own that Pillow then copies, bytes per pixel
# (measured: libwebp's canvas plus the frame handed to Pillow; libheif's image).
_DECODER_BUFFERS = {"WEBP": 12, "HEIF": 4, "AVIF": 4}
_OVERHEAD = 1 << 20  # row buffers, the resize's intermediate image, Python objects


class ImageDecodeError(ValueError):
    """The bytes cannot become a model input; the message is safe to show a user."""


class NotAnImage(ImageDecodeError):
    """Empty, corrupt, truncated, or not an image format Pillow can read."""


class ImageTooLarge(ImageDecodeError):
    """More pixels than MAX_PIXELS: refused before decoding to keep memory bounded."""


class BufferReader(io.RawIOBase):
    """A read-only, seekable file over bytes-like data, without copying it.

    ``io.BytesIO(bytearray)`` copies its argument; a downloaded file should exist once.
    """

    def __init__(self, data: Buffer) -> None:
        super().__init__()
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        start = min(self._pos, len(self._view))
        end = len(self._view) if size is None or size < 0 else min(start + size, len(self._view))
        self._pos = end
        return self._view[start:end].tobytes()

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Buffer) -> int:  # type: ignore[override]
        chunk = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        """Release the view, so the caller's buffer can be freed (or resized) at once."""
        self._view.release()
        super().close()


@dataclass
class OpenedImage:
    """An image whose header has been read (JPEG draft scale chosen), no pixel decoded yet."""

    image: Image.Image
    reader: BufferReader
    width: int  # as stored in the file
    height: int
    decode_cost: int  # an upper estimate of the memory decoding it to the model input takes

    def close(self) -> None:
        self.image.close()
        self.reader.close()


def open_image(data: Buffer, size: int = INPUT_SIZE, max_pixels: int = MAX_PIXELS) -> OpenedImage:
    """Read the header: raises ImageTooLarge past ``max_pixels``, NotAnImage if unreadable."""
    if not len(data):
        raise NotAnImage("the file is empty")
    _check_pixels(_webp_size(data), max_pixels)
    reader = BufferReader(data)
    try:
        with _pillow_errors():
            img = Image.open(reader)
            width, height = img.size
            _check_pixels((width, height), max_pixels)
            extra = 0
            if img.format == "JPEG":
                if img.info.get("progressive") or img.info.get("progression"):
                    extra = _progressive_jpeg_cost(img, width, height)
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale while staying >= size: big win on
                # large photos, no effect on the <=256 px training images.
                img.draft("RGB", (size, size))
            if img.format in _READS_WHOLE_FILE:
                extra += 2 * len(data)
            extra += _DECODER_BUFFERS.get(str(img.format), 0) * width * height
            return OpenedImage(img, reader, width, height, extra + _decode_cost(img, size))
    except BaseException:
        reader.close()
        raise


@contextlib.contextmanager
def _upright_rgb(opened: OpenedImage) -> Iterator[Image.Image]:
    """The first frame decoded, upright (EXIF) and RGB, with Pillow's errors, raised in the
    block too, as ours; closes ``opened`` after the block. Both finishes start here, so the
    model's input and the ``/why`` picture cannot drift apart."""
    try:
        with _pillow_errors():
            img = opened.image
            img.seek(0)  # animated GIF/WebP/PNG: the first frame
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # a copy only when it rotates
            yield _to_rgb(img)
    finally:
        opened.close()


def finish_decode(opened: OpenedImage, size: int = INPUT_SIZE) -> np.ndarray:
    """Decode an opened image into a ``uint8 [size, size, 3]`` array; always closes it."""
    with _upright_rgb(opened) as rgb:
        return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def decode_image(data: Buffer, size: int = INPUT_SIZE, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return a ``uint8 [size, size, 3]`` RGB array, the whole image resized bilinearly."""
    return finish_decode(open_image(data, size=size, max_pixels=max_pixels), size=size)


def picture_size(opened: OpenedImage, max_side: int) -> tuple[int, int]:
    """An upper bound on the size of :func:`finish_picture`'s result (before EXIF rotation),
    for an image opened with ``size=max_side``."""
    width, height = opened.image.size  # at the JPEG draft scale
    scale = min(1.0, max_side / max(width, height, 1))
    return int(width * scale) + 1, int(height * scale) + 1


def picture_cost(opened: OpenedImage, max_side: int) -> int:
    """What :func:`finish_picture` holds at its peak, for an image opened with
    ``size=max_side``: the decode's own price, the integer reduction ``thumbnail`` makes first
    (at most a quarter of the RGB pixels, 4 bytes each), and the picture it returns."""
    width, height = opened.image.size
    result = picture_size(opened, max_side)
    return opened.decode_cost + width * height + 4 * result[0] * result[1]


def finish_picture(opened: OpenedImage, max_side: int) -> Image.Image:
    """The picture as people see it (RGB, upright, its own aspect), at most ``max_side``
    pixels on its longer side: what ``/why`` draws its heatmap on. Always closes ``opened``."""
    with _upright_rgb(opened) as rgb:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        # Closing ``opened`` closes its image: hand back a picture of our own.
        return rgb.copy() if rgb is opened.image else rgb


def decode_picture(data: Buffer, max_side: int, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`finish_picture` from bytes. Same checks and errors as :func:`decode_image`."""
    opened = open_image(data, size=max_side, max_pixels=max_pixels)
    return finish_picture(opened, max_side)


def load_image_file(path: str | Path, size: int = INPUT_SIZE) -> np.ndarray:
    return decode_image(Path(path).read_bytes(), size=size)


def _check_pixels(size: tuple[int, int] | None, max_pixels: int) -> None:
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageTooLarge(f"the image is too large ({size[0]}x{size[1]} pixels)")


def _webp_size(data: Buffer) -> tuple[int, int] | None:
    """A WebP's canvas size from its first chunk, or None for anything else.

    Pillow's WebP plugin has libwebp allocate the whole canvas (4 bytes a pixel) while it
    opens the file, before anyone can look at the size: up to 1 GB for 16383x16383.
    """
    head = bytes(data[:30])
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":  # extended: 24-bit canvas width - 1, height - 1
        return (int.from_bytes(head[24:27], "little") + 1,
                int.from_bytes(head[27:30], "little") + 1)
    if chunk == b"VP8L" and head[20] == 0x2F:  # lossless: 14-bit width - 1, height - 1
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy key frame: 14-bit sizes
        return (int.from_bytes(head[26:28], "little") & 0x3FFF,
                int.from_bytes(head[28:30], "little") & 0x3FFF)
    return None


@contextlib.contextmanager
def _pillow_errors() -> Iterator[None]:
    """Pillow's many exceptions, as the two a user can be told about."""
    try:
        yield
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge("the image is too large") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImage("the file is not an image I can read, or it is damaged") from exc


def _decode_cost(img: Image.Image, size: int) -> int:
    """Memory for the decoded pixels (at the draft scale) plus the conversion to RGB, or the
    rotated copy when the EXIF orientation asks for one, whichever is more, plus the resize's
    intermediate image (one side already ``size``)."""
    width, height = img.size
    stored = _STORED.get(img.mode, 4)
    after = _TO_RGB.get(img.mode, 4)
    if _orientation(img) != 1:
        after = max(after, stored)
    return width * height * (stored + after) + max(width, height) * size * 4 + _OVERHEAD


def _orientation(img: Image.Image) -> int:
    """EXIF orientation from the header's EXIF block (``getexif`` would decode a PNG first)."""
    raw = img.info.get("exif")
    if not isinstance(raw, bytes | bytearray):
        return 1
    exif = Image.Exif()
    exif.load(bytes(raw))
    value = exif.get(_ORIENTATION, 1)
    return value if isinstance(value, int) else 1


def _progressive_jpeg_cost(img: Image.Image, width: int, height: int) -> int:
    """libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes each) until the end,
    at full resolution whatever the draft scale."""
    layers = getattr(img, "layers", 3)
    if layers == 1:
        return 2 * width * height
    # Chroma samples per luma sample: 4:4:4 -> 1, 4:2:2 -> 1/2, 4:2:0 -> 1/4 (unknown: 1).
    chroma = {0: 1.0, 1: 0.5, 2: 0.25}.get(JpegImagePlugin.get_sampling(img), 1.0)
    return int(2 * width * height * (1 + (layers - 1) * chroma))


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
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return img
