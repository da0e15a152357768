"""``python -m bench.decode``: bytes to model input for a typical Telegram photo.

Telegram offers each photo in several sizes (90, 320, 800, 1280 px on the long side); the bot
downloads the smallest one whose short side still covers the model's 224 px (here 320x240)
and decodes it with contract.decode_image, which asks libjpeg for a reduced-scale decode
("draft mode") when the JPEG is at least twice the model input. This benchmark times that
function on a generated photo-like 1280x960 JPEG and its 320x240 version (bench.photos), with
draft mode on (as shipped) and off, interleaved. Draft is switched off by making Pillow's
``JpegImageFile.draft`` a no-op for the duration, so contract/ is timed exactly as shipped.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import JpegImagePlugin

from bench.common import Stopwatch, median, percentile, table, write_result
from bench.photos import telegram_photo
from nothotdog.contract import decode_image

PHOTOS = 4  # different pictures, so one image's quirks do not decide
ROUNDS = 25
WARMUP = 2
BUDGET_S = 40.0


@contextlib.contextmanager
def draft_disabled() -> Iterator[None]:
    """Make JPEG draft a no-op, so libjpeg decodes every pixel at full scale."""
    original = JpegImagePlugin.JpegImageFile.draft
    JpegImagePlugin.JpegImageFile.draft = lambda self, mode, size: None  # type: ignore[method-assign,assignment,misc]
    try:
        yield
    finally:
        JpegImagePlugin.JpegImageFile.draft = original  # type: ignore[method-assign]


@dataclass
class Case:
    name: str
    size: str
    draft: bool
    photos: list[bytes]
    ms: list[float] = field(default_factory=list)

    def decode(self, data: bytes) -> np.ndarray:
        if self.draft:
            return decode_image(data)
        with draft_disabled():
            return decode_image(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.decode", description="bytes to model input, 1280 vs 320 px, draft")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    clock = Stopwatch()
    pairs = [telegram_photo(seed) for seed in range(PHOTOS)]
    full, small = [p[0] for p in pairs], [p[1] for p in pairs]
    cases = [
        Case("1280x960, draft on (shipped)", "1280x960", True, full),
        Case("1280x960, draft off", "1280x960", False, full),
        Case("320x240, draft on (shipped)", "320x240", True, small),
        Case("320x240, draft off", "320x240", False, small),
    ]
    for case in cases:
        for data in case.photos[:WARMUP]:
            case.decode(data)
    rounds = 0
    for r in range(args.rounds):
        if clock.seconds > BUDGET_S:
            break
        for case in cases[r % len(cases) :] + cases[: r % len(cases)]:
            for data in case.photos:
                t0 = time.perf_counter()
                case.decode(data)
                case.ms.append((time.perf_counter() - t0) * 1000)
        rounds += 1
    # What draft mode changes in the model's input: pixels, not just time.
    diffs = {}
    for label, photos in (("1280x960", full), ("320x240", small)):
        on = np.stack([decode_image(d) for d in photos]).astype(np.int16)
        with draft_disabled():
            off = np.stack([decode_image(d) for d in photos]).astype(np.int16)
        diffs[label] = float(np.abs(on - off).mean())
    sizes = {"1280x960": median([len(d) for d in full]), "320x240": median([len(d) for d in small])}

    base = median(cases[1].ms)  # the slowest reasonable path: full size, full decode
    rows, records = [], []
    for c in cases:
        med, p90 = median(c.ms), percentile(c.ms, 90)
        rows.append((c.name, f"{sizes[c.size] / 1000:.0f}", len(c.ms), med, p90, base / med,
                     f"{diffs[c.size]:.2f}" if c.draft else "0"))
        records.append({"name": c.name, "size": c.size, "draft": c.draft,
                        "jpeg_kb_median": round(sizes[c.size] / 1000, 1), "samples": len(c.ms),
                        "median_ms": round(med, 3), "p90_ms": round(p90, 3),
                        "speedup_vs_full_no_draft": round(base / med, 2),
                        "mean_abs_pixel_diff_vs_draft_off": round(diffs[c.size], 3)
                        if c.draft else 0.0})
    print(table(
        ["bytes -> uint8[224,224,3]", "JPEG kB", "n", "median ms", "p90 ms",
         "x vs 1280 no draft", "mean |Δpixel| vs off"], rows,
        title=f"Decode (contract.decode_image), {PHOTOS} photos x {rounds} interleaved rounds"))
    write_result("decode", {"photos": PHOTOS, "rounds": rounds, "cases": records}, clock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
