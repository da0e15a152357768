"""What the model's ``heatmap`` output means, and how it is drawn over a picture.

The output is the class activation map (CAM) of the positive class: the dense head applied at
each position of the feature map that the global average pooling averages (for VGG16 at 224
input, block5_pool: 7 x 7). In logits, ``heatmap[h, w] = (W[:, pos] - W[:, neg]) . F[h, w, :]
+ (b[pos] - b[neg])``, so it is unbounded and its mean over positions is exactly the verdict's
logit, ``log(P(hotdog) / (1 - P(hotdog)))`` (with more than two classes: the positive logit
minus the mean of the others). Positive cells pushed towards "hot dog", negative ones away.

For pictures it is scaled per image to [0, 1] (coolest to hottest cell), upsampled smoothly to
the picture's own size and painted with inferno, a perceptual colour map, semi-transparently.
numpy and Pillow only: the bot draws this without matplotlib.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# matplotlib's inferno at 17 evenly spaced points, interpolated linearly in between.
INFERNO = np.array(
    [
        [0, 0, 4], [11, 7, 36], [33, 12, 74], [61, 9, 101], [87, 16, 110], [113, 25, 110],
        [138, 34, 106], [163, 44, 97], [188, 55, 84], [210, 70, 68], [228, 90, 49],
        [241, 115, 29], [249, 142, 9], [252, 172, 17], [249, 203, 53], [242, 234, 105],
        [252, 255, 164],
    ],
    dtype=np.float32,
)  # fmt: skip
# Opacity of the colour: the coolest cells let the photo show through, the hottest dominate.
ALPHA_COLD, ALPHA_HOT = 0.35, 0.7


def normalise(heatmap: np.ndarray) -> np.ndarray:
    """Scale one ``[h, w]`` map to [0, 1], coolest to hottest cell; a flat map is all 0."""
    heat = np.asarray(heatmap, dtype=np.float32)
    low, high = float(heat.min()), float(heat.max())
    if not high > low:  # also NaN
        return np.zeros_like(heat)
    return (heat - low) / (high - low)


def colorize(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] to inferno RGB, ``float32 [..., 3]`` in 0..255."""
    x = np.clip(values, 0.0, 1.0) * (len(INFERNO) - 1)
    low = np.minimum(x.astype(np.int64), len(INFERNO) - 2)
    frac = (x - low)[..., None]
    return INFERNO[low] * (1.0 - frac) + INFERNO[low + 1] * frac


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A ``[h, w]`` map in [0, 1] stretched bicubically to ``size`` (width, height).

    The model saw the whole picture squashed to a square, so stretching the grid back over
    the picture puts every cell where its pixels came from.
    """
    grid = Image.fromarray(np.ascontiguousarray(heatmap, dtype=np.float32))
    return np.clip(np.asarray(grid.resize(size, Image.Resampling.BICUBIC)), 0.0, 1.0)


# Rows painted at a time: the float32 working set of a band (up to 160 bytes a pixel) stays
# small, and the result is the same as painting the whole picture at once.
BAND_ROWS = 32


def overlay(picture: Image.Image, heatmap: np.ndarray) -> Image.Image:
    """``picture`` (RGB) with ``heatmap`` (one raw ``[h, w]`` output) painted over it.

    Painted in bands of rows, so its memory is a few bytes per pixel plus one band's float
    working set (:func:`overlay_cost`), whatever the picture's size.
    """
    heat = upsample(normalise(heatmap), picture.size)
    photo = np.asarray(picture if picture.mode == "RGB" else picture.convert("RGB"))
    out = np.empty(photo.shape, dtype=np.uint8)
    for top in range(0, photo.shape[0], BAND_ROWS):
        rows = slice(top, top + BAND_ROWS)
        band = heat[rows][..., None]
        alpha = ALPHA_COLD + (ALPHA_HOT - ALPHA_COLD) * band
        mixed = photo[rows].astype(np.float32) * (1.0 - alpha) + colorize(band[..., 0]) * alpha
        out[rows] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(out)


def overlay_cost(width: int, height: int) -> int:
    """An upper estimate of what :func:`overlay` holds at its peak for a ``width`` x ``height``
    picture: the upsampled map (float32, and Pillow's copy while it resizes), the photo's and
    the result's pixels as arrays and as an image, and one band's float working set."""
    return width * height * 24 + width * min(height, BAND_ROWS) * 160
