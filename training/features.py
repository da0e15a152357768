"""Run the frozen trunk once per image (and per augmented view) and keep its output on disk.

The trunk never changes during training, so every epoch after the first would recompute the
same numbers: caching them turns hours of VGG16 forward passes into minutes. A cache file's
name is a hash of everything that decides its content (file bytes, view, seed, augmentation,
preprocessing, trunk weights), so a rerun with the same inputs reuses it and anything else
misses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nothotdog.contract import INPUT_SIZE, RESIZE_METHOD, ImageDecodeError, decode_image
from nothotdog.contract.dataset import DatasetError, Example
from nothotdog.training.augment import AugmentParams, augment

CLEAN_VIEW = 0  # view 0 is the plain image; views 1..K are augmented


def file_digests(examples: Sequence[Example]) -> list[str]:
    return [hashlib.sha256(e.path.read_bytes()).hexdigest() for e in examples]


def load_view(
    example: Example, view: int, seed: int, params: AugmentParams, size: int = INPUT_SIZE
) -> np.ndarray:
    """The decoded image, augmented for views > 0 with a generator fixed by (seed, view, file)."""
    try:
        image = decode_image(example.path.read_bytes(), size=size)
    except (ImageDecodeError, OSError) as exc:
        raise DatasetError(f"cannot use training image {example.path}: {exc}") from exc
    if view == CLEAN_VIEW:
        return image
    name_key = int(hashlib.sha256(example.path.name.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng([seed, view, name_key])
    return augment(image, rng, params)


def cache_key(
    digests: Sequence[str], view: int, seed: int, params: AugmentParams, trunk_id: str, size: int
) -> str:
    recipe = {
        "files": list(digests),
        "view": view,
        "seed": seed if view != CLEAN_VIEW else None,
        "augment": params.as_dict() if view != CLEAN_VIEW else None,
        "input_size": size,
        "resize": RESIZE_METHOD,
        "trunk": trunk_id,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:24]


def trunk_outputs(
    predict: Callable[[np.ndarray], np.ndarray],
    output_shape: tuple[int, ...],
    examples: Sequence[Example],
    digests: Sequence[str],
    cache_dir: Path,
    trunk_id: str,
    view: int = CLEAN_VIEW,
    seed: int = 0,
    params: AugmentParams | None = None,
    batch_size: int = 32,
    desc: str = "features",
    size: int = INPUT_SIZE,
) -> np.ndarray:
    """``float16 [n, *output_shape]`` trunk outputs for one view, from the cache when present."""
    params = params or AugmentParams()
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(digests, view, seed, params, trunk_id, size)
    path = cache_dir / f"{desc}-v{view}-{key}.npy"
    if path.exists():
        print(f"  {desc} view {view}: reusing {path.name}")
        return np.load(path)
    out = np.empty((len(examples), *output_shape), dtype=np.float16)
    starts = range(0, len(examples), batch_size)

    def decode_batch(start: int) -> np.ndarray:
        chunk = examples[start : start + batch_size]
        return np.stack([load_view(e, view, seed, params, size) for e in chunk])

    # Decode the next batch on a thread (Pillow releases the GIL) while the trunk runs.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode_batch, 0) if examples else None
        for start in tqdm(starts, desc=f"  {desc} view {view}", unit="batch"):
            images = pending.result()
            nxt = start + batch_size
            pending = pool.submit(decode_batch, nxt) if nxt < len(examples) else None
            out[start : start + len(images)] = predict(images)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    os.replace(tmp, path)  # a run killed mid-write leaves no half cache behind
    return out
