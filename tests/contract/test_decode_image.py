"""contract.decode_image, the one bytes-to-pixels path the bot, the CLI and training share."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from nothotdog.contract import ImageTooLarge, NotAnImage, decode_image, open_image
from nothotdog.contract.imaging import BufferReader
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


# Pillow warns for it on its way: the warning is harmless and not silenced (silencing warnings
# is process-wide, not thread-safe), the size check that follows refuses the image.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_warning_band_is_refused_with_its_size() -> None:
    """100 MP: above Pillow's MAX_IMAGE_PIXELS (where it only warns), below its error limit."""
    with pytest.raises(ImageTooLarge, match=r"10000x10000 pixels"):
        decode_image(_png_header_only(10_000, 10_000))


def _webp_header(width: int, height: int) -> bytes:
    """The start of an extended WebP claiming a ``width`` x ``height`` canvas."""
    vp8x = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + len(vp8x).to_bytes(4, "little") + vp8x
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def test_webp_canvas_is_checked_before_pillow_allocates_it() -> None:
    # libwebp would allocate 16383 x 16383 x 4 bytes (1 GB) while Pillow opens the file.
    with pytest.raises(ImageTooLarge, match=r"16383x16383 pixels"):
        decode_image(_webp_header(16_383, 16_383))


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda t: t.__name__)
def test_decodes_any_bytes_like_buffer_alike(wrap: type) -> None:
    data = encode(Image.new("RGB", (120, 80), (200, 90, 88)), "PNG")
    assert np.array_equal(decode_image(wrap(data)), decode_image(data))


def test_decoding_a_bytearray_neither_copies_nor_keeps_it() -> None:
    """The reader is a view: once decoding ends it is released, so the buffer can be freed
    (a bytearray with a live view cannot even be resized)."""
    data = bytearray(encode(Image.new("RGB", (120, 80), (200, 90, 88)), "PNG"))
    reader = BufferReader(data)
    assert reader.read(8) == bytes(data[:8]) and reader.tell() == 8
    with pytest.raises(BufferError):
        data.append(0)  # the view is live
    reader.close()
    decode_image(data)
    data.append(0)  # no view left behind by decode_image


def test_open_image_reads_only_the_header_and_prices_the_decode() -> None:
    started = time.perf_counter()
    opened = open_image(_png_header_only(6_000, 6_000))  # 36 MP RGB: 144 MB once decoded
    assert time.perf_counter() - started < 0.5
    assert (opened.width, opened.height) == (6_000, 6_000)
    assert opened.decode_cost >= 6_000 * 6_000 * 4  # Pillow keeps RGB as 4 bytes a pixel
    opened.close()


def test_jpeg_draft_scale_is_priced_not_the_full_size() -> None:
    big = encode(Image.new("RGB", (4000, 3000), (200, 90, 88)), "JPEG", quality=85)
    opened = open_image(big)
    assert (opened.width, opened.height) == (4000, 3000)
    assert opened.decode_cost < 4000 * 3000  # decoded at 1/8 scale: 500 x 375
    opened.close()
    progressive = encode(Image.new("RGB", (4000, 3000), (200, 90, 88)), "JPEG", quality=85,
                         progressive=True)
    opened = open_image(progressive)
    assert opened.decode_cost >= 2 * 4000 * 3000  # libjpeg keeps every coefficient
    opened.close()
