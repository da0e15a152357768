"""contract.heatmap: the drawing shared by /why, the CLI and the model card."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from nothotdog.contract.heatmap import (
    ALPHA_COLD,
    ALPHA_HOT,
    BAND_ROWS,
    INFERNO,
    colorize,
    normalise,
    overlay,
    upsample,
)
from nothotdog.contract.imaging import NotAnImage, decode_picture, open_image


def test_normalise_spans_zero_to_one_and_a_flat_map_stays_cold() -> None:
    heat = normalise(np.array([[-3.0, 1.0], [5.0, 1.0]]))
    assert heat.min() == 0.0 and heat.max() == 1.0 and heat[0, 1] == pytest.approx(0.5)
    assert not normalise(np.full((7, 7), 2.5)).any()


def test_colorize_runs_from_inferno_black_to_its_pale_yellow() -> None:
    ends = colorize(np.array([0.0, 1.0]))
    np.testing.assert_allclose(ends, INFERNO[[0, -1]])
    ramp = colorize(np.linspace(0, 1, 50))
    lightness = ramp @ np.array([0.299, 0.587, 0.114])
    assert (np.diff(lightness) > 0).all()  # perceptual: brighter all the way up


def test_the_hottest_cell_lands_where_its_pixels_came_from() -> None:
    """A 7 x 7 map over a 700 x 350 picture: cell (row 1, column 5) covers x 500..600,
    y 50..100, because the model saw the picture squashed to a square."""
    heat = np.zeros((7, 7), np.float32)
    heat[1, 5] = 4.0
    up = upsample(normalise(heat), (700, 350))
    assert up.shape == (350, 700)
    y, x = np.unravel_index(np.argmax(up), up.shape)
    assert 500 <= x < 600 and 50 <= y < 100
    drawn = np.asarray(overlay(Image.new("RGB", (700, 350), (90, 90, 90)), heat).convert("L"))
    y, x = np.unravel_index(np.argmax(drawn), drawn.shape)
    assert 500 <= x < 600 and 50 <= y < 100
    assert drawn[300, 100] < drawn[75, 550] / 2


def test_decode_picture_keeps_the_aspect_and_orientation() -> None:
    image = Image.new("RGB", (2000, 1000), (10, 200, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    picture = decode_picture(buffer.getvalue(), max_side=800)
    assert picture.size == (400, 800) and picture.mode == "RGB"
    with pytest.raises(NotAnImage):
        decode_picture(b"not an image", max_side=800)


def test_overlay_paints_in_bands_exactly_as_at_once() -> None:
    """Bands bound the float working set; the pixels are those of one pass over the picture."""
    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, (BAND_ROWS * 3 + 5, 97, 3), dtype=np.uint8))
    heat = rng.standard_normal((7, 7)).astype(np.float32)
    up = upsample(normalise(heat), picture.size)[..., None]
    alpha = ALPHA_COLD + (ALPHA_HOT - ALPHA_COLD) * up
    photo = np.asarray(picture, dtype=np.float32)
    mixed = photo * (1.0 - alpha) + colorize(up[..., 0]) * alpha
    at_once = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(overlay(picture, heat)), at_once)


@pytest.mark.parametrize(
    ("size", "mode", "fmt"), [((1600, 1200), "RGB", "JPEG"), ((700, 900), "RGBA", "PNG")]
)
def test_the_why_picture_is_priced_above_what_drawing_it_holds(
    size: tuple[int, int], mode: str, fmt: str
) -> None:
    """What numpy allocates (tracemalloc sees it) stays well inside the price, which also
    covers Pillow's own buffers."""
    from nothotdog.bot.classifier import PICTURE_SIDE, draw_cost, draw_jpeg

    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, fmt)
    opened = open_image(buffer.getvalue(), size=PICTURE_SIDE)
    price = draw_cost(opened)
    tracemalloc.start()
    try:
        jpeg = draw_jpeg(opened, rng.standard_normal((7, 7)).astype(np.float32))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert Image.open(io.BytesIO(jpeg)).size[0] <= PICTURE_SIDE
    assert peak < price / 2, f"{peak / 2**20:.1f} MiB traced, priced {price / 2**20:.1f} MiB"
