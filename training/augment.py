"""Photo augmentation for fine-tuning: random resized crop, horizontal flip, colour jitter.

It works on the contract's decoded ``uint8 [size, size, 3]`` array, so augmented views start
from exactly the pixels the bot would see.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class AugmentParams:
    min_area: float = 0.5  # of the image kept by the random crop
    max_aspect: float = 4 / 3
    flip: bool = True
    jitter: float = 0.2  # brightness, contrast and saturation scaled by 1 +- jitter

    def as_dict(self) -> dict:
        return asdict(self)


def augment(image: np.ndarray, rng: np.random.Generator, params: AugmentParams) -> np.ndarray:
    height, width = image.shape[:2]
    area = rng.uniform(params.min_area, 1.0) * height * width
    aspect = np.exp(rng.uniform(-np.log(params.max_aspect), np.log(params.max_aspect)))
    crop_w = max(1, round(float(min(width, np.sqrt(area * aspect)))))
    crop_h = max(1, round(float(min(height, np.sqrt(area / aspect)))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    pil = Image.fromarray(image).resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h)
    )
    if params.flip and rng.random() < 0.5:
        pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = np.asarray(pil, dtype=np.float32)
    if params.jitter > 0:
        lo, hi = 1 - params.jitter, 1 + params.jitter
        out = out * rng.uniform(lo, hi)  # brightness
        out = (out - out.mean()) * rng.uniform(lo, hi) + out.mean()  # contrast
        gray = out.mean(axis=2, keepdims=True)
        out = (out - gray) * rng.uniform(lo, hi) + gray  # saturation
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
