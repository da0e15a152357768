"""Images for the export checks: seeded stratified samples of labelled folders, or generated ones.

Every real image goes through contract.imaging, so the checks see exactly the bot's pixels.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from nothotdog.contract import INPUT_SIZE, ImageDecodeError, load_image_file
from nothotdog.contract.dataset import Example, list_examples


def stratified_sample(examples: Sequence[Example], n: int, seed: int = 0) -> list[Example]:
    """``n`` examples in proportion to each (class, source) group, so no class or source is left
    out the way "the first n files" would leave them out. ``n <= 0`` means all."""
    if n <= 0 or n >= len(examples):
        return list(examples)
    groups: dict[tuple[int, str], list[Example]] = defaultdict(list)
    for example in examples:
        groups[(example.label, example.source)].append(example)
    keys = sorted(groups)
    shares = {k: n * len(groups[k]) / len(examples) for k in keys}
    quota = {k: int(shares[k]) for k in keys}
    # Largest remainder: the seats left go to the groups that lost most to rounding down.
    by_loss = sorted(keys, key=lambda k: shares[k] - quota[k], reverse=True)
    for k in by_loss[: n - sum(quota.values())]:
        quota[k] += 1
    rng = random.Random(seed)
    picked = [e for k in keys for e in rng.sample(groups[k], quota[k])]
    return sorted(picked, key=lambda e: (e.label, str(e.path)))


def labelled_examples(
    root: str | Path, labels: Sequence[str], limit: int = 0, seed: int = 0
) -> list[Example]:
    return stratified_sample(list_examples(root, labels), limit, seed)


def decode_examples(
    examples: Sequence[Example], size: int = INPUT_SIZE
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Images, their labels, and the files that could not be read or decoded (skipped, not
    fatal: one photo that vanished or can't be opened must not end a 17-minute export)."""
    images, labels, skipped = [], [], []
    for example in examples:
        try:
            images.append(load_image_file(example.path, size))
        except (ImageDecodeError, OSError):
            skipped.append(example.path)
            continue
        labels.append(example.label)
    shape = (0, size, size, 3)
    array = np.stack(images) if images else np.zeros(shape, np.uint8)
    return array, np.asarray(labels, dtype=np.int64), skipped


def batches(
    examples: Sequence[Example], batch_size: int, size: int = INPUT_SIZE
) -> Iterator[tuple[np.ndarray, np.ndarray, list[Path]]]:
    """Decode lazily, so a check over thousands of photos holds one batch in memory."""
    for start in range(0, len(examples), batch_size):
        yield decode_examples(examples[start : start + batch_size], size)


def generated_images(n: int = 32, seed: int = 0, size: int = INPUT_SIZE) -> np.ndarray:
    """Stand-ins for photos when no folder is given: flat colours (including pure black and
    white), smooth gradients and noise, so both saturated and typical pixels are exercised."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    for i in range(n):
        kind = i % 4
        if kind == 0:
            colour = (0, 0, 0) if i == 0 else (255, 255, 255) if i == 4 else rng.integers(0, 256, 3)
            out[i] = np.asarray(colour, dtype=np.uint8)
        elif kind == 1:
            lo, hi = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            grad = ramp[:, None, None] if i % 8 == 1 else ramp[None, :, None]
            out[i] = np.clip(lo + (hi.astype(np.float32) - lo) * grad, 0, 255).astype(np.uint8)
        elif kind == 2:
            out[i] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        else:
            base = rng.integers(0, 256, 3).astype(np.float32)
            noise = rng.normal(0.0, 30.0, (size, size, 3))
            out[i] = np.clip(base + noise, 0, 255).astype(np.uint8)
    return out
