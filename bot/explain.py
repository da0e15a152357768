"""Bytes in, the ``/why`` picture out: the verdict, P(positive), and the heatmap over the photo.

No Telegram types, so the bot and ``nothotdog why`` draw the same picture. The verdict comes
from the very pixels a normal verdict uses (``contract.decode_image``); the heatmap is drawn on
the photo at its own aspect (``contract.imaging.finish_picture``). The bot runs the pieces
separately, within its byte budget: the decode and the drawing in its decode threads
(:func:`draw_jpeg`, priced by :func:`draw_bytes`), the model in its inference threads.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from nothotdog.bot.classifier import Verdict, verdict_from
from nothotdog.contract import OpenedImage, decode_image
from nothotdog.contract.heatmap import overlay, overlay_bytes
from nothotdog.contract.imaging import decode_picture, finish_picture, picture_bytes, picture_size
from nothotdog.contract.runtime import OnnxModel

PICTURE_SIDE = 1024  # longest side of the picture sent back: plenty for a phone screen
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Explanation:
    verdict: Verdict  # holds P(positive) too: verdict.p_positive
    picture: Image.Image  # the photo with the heatmap drawn over it


def encode(picture: Image.Image, image_format: str = "JPEG") -> bytes:
    """The picture as a file: JPEG for Telegram (it recompresses photos anyway)."""
    buffer = io.BytesIO()
    jpeg = image_format.upper() in ("JPEG", "JPG")
    options = {"quality": JPEG_QUALITY} if jpeg else {}
    picture.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def draw_jpeg(opened: OpenedImage, heatmap: np.ndarray, max_side: int = PICTURE_SIDE) -> bytes:
    """The opened photo (opened with ``size=max_side``) with ``heatmap`` over it, as a JPEG;
    closes ``opened``. Blocking: the bot runs it in a decode thread."""
    return encode(overlay(finish_picture(opened, max_side), heatmap))


def draw_bytes(opened: OpenedImage, max_side: int = PICTURE_SIDE) -> int:
    """What :func:`draw_jpeg` holds at its peak: the decode, or else the picture, the drawing
    and the JPEG (at most 3 bytes a pixel), whichever is more."""
    long, short = sorted(picture_size(opened, max_side), reverse=True)  # either orientation
    drawing = 4 * long * short + overlay_bytes(long, short) + 3 * long * short
    return max(picture_bytes(opened, max_side), drawing)


def explain(model: OnnxModel, data: bytes, max_side: int = PICTURE_SIDE) -> Explanation:
    """Decode, one onnxruntime run for probabilities and heatmap, draw. Raises
    contract.ImageDecodeError for unusable bytes; blocking (``nothotdog why``)."""
    spec = model.spec
    probs, heatmaps = model.explain(decode_image(data, size=spec.input_size)[None])
    picture = overlay(decode_picture(data, max_side), heatmaps[0])
    return Explanation(verdict_from(spec, probs[0]), picture)
