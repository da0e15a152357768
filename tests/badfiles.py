"""A corpus of hostile and odd files, built in memory in well under a second.

Each entry says what a user who sends it must hear back, so the bot tests (and anything else
that wants a nasty input, e.g. benchmarks) can drive the real bot with it. No file is stored
in the repository: the bytes are made here, the bombs with zlib, without decoding anything.
"""

from __future__ import annotations

import enum
import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.imagefiles import GREEN, RED, encode, solid

# The 40 MB file is declared over Telegram's 20 MB download limit, and really is that big.
BIG_FILE_BYTES = 40 * 1024 * 1024
BOMB_SIDE = 20_000  # 400 MP: past Pillow's own 179 MP limit; 1.2 GB as RGB if it were decoded
CAP_BOMB_SIDE = 8_000  # 64 MP: under Pillow's limit, past contract.MAX_PIXELS (40 MP)


class Expect(enum.Enum):
    """What the bot must do with a file."""

    HOTDOG = "hotdog"  # a verdict: hotdog
    NOT_HOTDOG = "not_hotdog"  # a verdict: not hotdog
    NEUTRAL = "neutral"  # a verdict at 50% (grey pictures: the redness model can't tell)
    UNREADABLE = "unreadable"  # "I couldn't read that image: <reason>"
    NOT_AN_IMAGE = "not_an_image"  # a document that isn't an image: told so, silence in groups
    TOO_LARGE = "too_large"  # refused from its declared size, never downloaded


@dataclass(frozen=True)
class BadFile:
    name: str
    data: bytes
    file_name: str
    mime_type: str
    expect: Expect
    reason: str = ""  # for UNREADABLE: the reason the user is given

    def __repr__(self) -> str:  # keep 40 MB out of assertion messages
        return f"BadFile({self.name!r}, {len(self.data)} bytes, {self.expect.name})"


DAMAGED = "the file is not an image I can read, or it is damaged"


def corpus() -> list[BadFile]:
    """Every file of the corpus of bad and unusual files, with the answer it must get."""
    return list(_corpus())


def _corpus() -> Iterator[BadFile]:
    jpeg = solid(RED, size=(320, 240))
    yield BadFile("zero-bytes", b"", "empty.jpg", "image/jpeg", Expect.UNREADABLE,
                  "the file is empty")
    yield BadFile("truncated-jpeg", jpeg[: len(jpeg) // 2], "cut.jpg", "image/jpeg",
                  Expect.UNREADABLE, DAMAGED)
    yield BadFile("corrupt-png", corrupt_png(), "broken.png", "image/png", Expect.UNREADABLE,
                  DAMAGED)
    yield BadFile("text-named-jpg", b"Dear diary,\nthis is not a picture.\n" * 20, "diary.jpg",
                  "image/jpeg", Expect.UNREADABLE, DAMAGED)
    yield BadFile("html-page", HTML, "page.html", "text/html", Expect.NOT_AN_IMAGE, DAMAGED)
    yield BadFile("pdf", PDF, "paper.pdf", "application/pdf", Expect.NOT_AN_IMAGE, DAMAGED)
    yield BadFile("svg", SVG, "drawing.svg", "image/svg+xml", Expect.NOT_AN_IMAGE, DAMAGED)
    yield BadFile("one-pixel", encode(Image.new("RGB", (1, 1), RED), "PNG"), "dot.png",
                  "image/png", Expect.HOTDOG)
    yield BadFile("png-bomb-20000", png_bomb(BOMB_SIDE), "bomb.png", "image/png",
                  Expect.UNREADABLE, "the image is too large")
    yield BadFile("png-over-cap-8000", png_bomb(CAP_BOMB_SIDE), "big.png", "image/png",
                  Expect.UNREADABLE,
                  f"the image is too large ({CAP_BOMB_SIDE}x{CAP_BOMB_SIDE} pixels)")
    yield BadFile("40mb-file", big_file(), "huge.jpg", "image/jpeg", Expect.TOO_LARGE)
    yield BadFile("animated-gif", animated("GIF"), "anim.gif", "image/gif", Expect.HOTDOG)
    yield BadFile("animated-webp", animated("WEBP", lossless=True), "anim.webp", "image/webp",
                  Expect.HOTDOG)
    yield BadFile("cmyk-jpeg", encode(Image.new("RGB", (64, 48), RED).convert("CMYK"), "JPEG",
                                      quality=95), "print.jpg", "image/jpeg", Expect.HOTDOG)
    yield BadFile("16-bit-rgb-png", png_16bit_rgb(GREEN), "deep.png", "image/png",
                  Expect.NOT_HOTDOG)
    yield BadFile("16-bit-gray-png", encode(Image.fromarray(np.full((48, 64), 40000, np.uint16)),
                                            "PNG"), "deep-gray.png", "image/png", Expect.NEUTRAL)
    yield BadFile("grayscale-jpeg", encode(Image.new("L", (64, 48), 120), "JPEG"), "gray.jpg",
                  "image/jpeg", Expect.NEUTRAL)
    yield BadFile("palette-transparency", palette_with_hidden_red(), "sticker.png", "image/png",
                  Expect.NOT_HOTDOG)
    yield BadFile("exif-rotated", exif_rotated(), "rotated.jpg", "image/jpeg", Expect.NOT_HOTDOG)
    yield BadFile("heic", heic(), "iphone.heic", "image/heic",
                  Expect.HOTDOG if heic_supported() else Expect.UNREADABLE, DAMAGED)


HTML = (b"<!DOCTYPE html><html><head><title>Hotdog</title></head>"
        b"<body><img src='hotdog.jpg'><script>alert(1)</script></body></html>\n")
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
SVG = (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg' width='100' height='100'>"
       b"<rect width='100' height='100' fill='red'/></svg>")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bomb(side: int) -> bytes:
    """A valid, fully red ``side``x``side`` PNG, made without ever holding its pixels.

    1-bit palette rows of zeros compress about 1000:1, so 20000x20000 is ~50 KB on the wire
    and 50 MB of zlib input, yet a decoder would need 400 MB (1.2 GB as RGB) to expand it.
    """
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 3, 0, 0, 0)  # 1-bit palette
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits, all index 0
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row * 500) for _ in range(side // 500)]
    chunks.append(compressor.compress(row * (side % 500)))
    chunks.append(compressor.flush())
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"PLTE", bytes([*RED, *GREEN])) + png_chunk(b"IDAT", b"".join(chunks))
            + png_chunk(b"IEND", b""))


def corrupt_png() -> bytes:
    """A real PNG whose compressed pixel data has been overwritten in the middle."""
    noise = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = bytearray(encode(Image.fromarray(noise), "PNG"))
    start = data.index(b"IDAT") + 4 + 100
    data[start : start + 200] = b"\xff" * 200
    return bytes(data)


def big_file() -> bytes:
    """40 MB that start like a JPEG; the bot must refuse it before fetching a byte."""
    return b"\xff\xd8\xff\xe0" + bytes(BIG_FILE_BYTES - 4)


def animated(fmt: str, **params: object) -> bytes:
    """Red first frame, green after: the bot must judge the first (red: hotdog)."""
    frames = [Image.new("RGB", (64, 48), c) for c in (RED, GREEN, GREEN)]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   **params)
    return buffer.getvalue()


def png_16bit_rgb(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    """48-bit RGB PNG (Pillow cannot write one): each 8-bit channel c stored as c * 257."""
    width, height = size
    pixels = np.empty((height, width, 3), dtype=">u2")
    pixels[:] = np.array(color, dtype=np.uint32) * 257
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def palette_with_hidden_red() -> bytes:
    """Half transparent red (shown as white), half green: not hotdog only if alpha is honoured.

    A decoder that ignores transparency sees half red, half green and says hotdog.
    """
    image = Image.new("P", (64, 48), 1)
    image.putpalette([*RED, *GREEN])
    image.paste(0, (0, 0, 32, 48))
    return encode(image, "PNG", transparency=0)


def exif_rotated(orientation: bool = True) -> bytes:
    """A portrait photo stored sideways with EXIF Orientation=6, as phones write them.

    Upright, its top 30 % is red and the rest green: its top half is mostly red (what a model
    that looks at the top half calls hotdog), the whole mostly green. Read as stored, ignoring
    the tag, its top half is mostly green. ``orientation=False`` leaves the tag out.
    """
    upright = Image.new("RGB", (64, 96), GREEN)
    upright.paste(RED, (0, 0, 64, 29))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # Orientation 6 turns it back
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def heic_supported() -> bool:
    """pillow-heif (the ``heif`` extra) installed: the bot reads iPhone photos."""
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        return False
    return True


def heic(colour: tuple[int, int, int] = RED) -> bytes:
    """A HEIC of one colour, or (without an encoder) the start of one: 'ftypheic' then junk."""
    if heic_supported():
        from pillow_heif import register_heif_opener

        register_heif_opener()
        return encode(Image.new("RGB", (64, 48), colour), "HEIF", quality=90)
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
