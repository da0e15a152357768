"""Bytes in, the ``/why`` picture out: the verdict, P(positive), and the heatmap over the photo.

No Telegram types, so the bot's worker threads and ``nothotdog why`` draw the same picture.
The verdict comes from the very pixels a normal verdict uses (``contract.decode_image``); the
heatmap is drawn on the photo at its own aspect (``contract.imaging.decode_picture``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from bot.classifier import Verdict
from contract import decode_image
from contract.heatmap import overlay
from contract.imaging import decode_picture
from contract.runtime import OnnxModel

PICTURE_SIDE = 1024  # longest side of the picture sent back: plenty for a phone screen


@dataclass(frozen=True)
class Explanation:
    verdict: Verdict
    p_positive: float
    picture: Image.Image  # the photo with the heatmap drawn over it

    def encode(self, image_format: str = "JPEG") -> bytes:
        """The picture as a file: JPEG for Telegram (it recompresses photos anyway)."""
        buffer = io.BytesIO()
        options = {"quality": 90} if image_format.upper() in ("JPEG", "JPG") else {}
        self.picture.save(buffer, format=image_format, **options)
        return buffer.getvalue()


def explain(model: OnnxModel, data: bytes, max_side: int = PICTURE_SIDE) -> Explanation:
    """Decode, one onnxruntime run for probabilities and heatmap, draw. Raises
    contract.ImageDecodeError for unusable bytes; blocking: call it from a worker thread."""
    spec = model.spec
    probs, heatmaps = model.explain(decode_image(data, size=spec.input_size)[None])
    label, p = spec.verdict(probs[0])
    verdict = Verdict(label=label, probability=p, is_positive=label == spec.positive_label)
    picture = overlay(decode_picture(data, max_side), heatmaps[0])
    return Explanation(verdict, float(probs[0][spec.positive_index]), picture)


def explain_jpeg(model: OnnxModel, data: bytes) -> tuple[Explanation, bytes]:
    """What the bot's worker thread does: the explanation and the file to send."""
    explanation = explain(model, data)
    return explanation, explanation.encode("JPEG")
