"""contract.decode_image, the one bytes-to-pixels path the bot, the CLI and training share."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from contract import ImageTooLarge, NotAnImage, decode_image
from tests.imagefiles import encode

SIZE = 32  # small output keeps these fast; the logic is size-independent


def mean(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1, 3).mean(axis=0)


def test_output_contract() -> None:
    out = decode_image(encode(Image.new("RGB", (640, 480), (10, 200, 30))))
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert np.abs(mean(out) - (10, 200, 30)).max() <= 2


@pytest.mark.parametrize(("orientation", "red_side"), [(1, "left"), (3, "right"),
                                                       (6, "top"), (8, "bottom")])
def test_exif_orientation_is_honoured(orientation: int, red_side: str) -> None:
    image = Image.new("RGB", (80, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 40, 40))  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode_image(encode(image, "JPEG", quality=95, exif=exif.tobytes()), size=SIZE)
    halves = {
        "left": out[:, : SIZE // 2], "right": out[:, SIZE // 2 :],
        "top": out[: SIZE // 2], "bottom": out[SIZE // 2 :],
    }
    assert mean(halves[red_side])[0] > 200, f"orientation {orientation}: red should be {red_side}"


def test_transparency_is_composited_on_white() -> None:
    image = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # fully transparent red
    image.paste((0, 0, 0, 255), (0, 0, 20, 40))  # opaque black left half
    out = decode_image(encode(image, "PNG"), size=SIZE)
    assert mean(out[:, SIZE // 2 + 2 :]).tolist() == [255, 255, 255]
    assert mean(out[:, : SIZE // 2 - 2]).tolist() == [0, 0, 0]


def test_palette_with_transparency() -> None:
    image = Image.new("P", (40, 40), 1)
    image.putpalette([0, 255, 0, 255, 0, 0] + [0] * 762)
    image.paste(0, (0, 0, 20, 40))
    out = decode_image(encode(image, "PNG", transparency=0), size=SIZE)
    assert mean(out[:, : SIZE // 2 - 2]).tolist() == [255, 255, 255]  # transparent green
    assert mean(out[:, SIZE // 2 + 2 :]).tolist() == [255, 0, 0]


def test_cmyk_jpeg() -> None:
    out = decode_image(encode(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG"), size=SIZE)
    r, g, b = mean(out)
    assert r > 200 and g < 60 and b < 60


def test_grayscale() -> None:
    out = decode_image(encode(Image.new("L", (40, 40), 77), "PNG"), size=SIZE)
    assert mean(out).tolist() == [77, 77, 77]


def test_16_bit_grayscale_is_scaled_not_clipped() -> None:
    image = Image.fromarray(np.full((40, 40), 32768, dtype=np.uint16))
    out = decode_image(encode(image, "PNG"), size=SIZE)
    assert np.allclose(mean(out), 127.5, atol=1)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_use_the_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    r, g, b = mean(decode_image(buffer.getvalue(), size=SIZE))
    assert r > 200 and g < 40 and b < 40


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header() -> None:
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge, match="too large"):
        decode_image(_png_header_only(20_000, 20_000))
    assert time.perf_counter() - started < 0.5  # nothing was decoded


def test_pixel_cap_applies_to_real_images() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=5_000)


def test_large_jpeg_decodes_to_the_model_size() -> None:
    data = encode(Image.new("RGB", (4000, 3000), (200, 90, 88)), "JPEG", quality=85)
    out = decode_image(data)
    assert out.shape == (224, 224, 3)
    assert np.abs(mean(out) - (200, 90, 88)).max() <= 3


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
     encode(Image.new("RGB", (64, 64)), "JPEG")[:150]],
    ids=["empty", "text", "svg", "truncated-jpeg"],
)
def test_unreadable_bytes_raise_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImage):
        decode_image(data)
