"""Every photo through the frozen trunk once per view, kept on disk: what both phases train on.

The trunk never changes during training, so every epoch after the first would recompute the
same numbers: caching them turns hours of VGG16 forward passes into minutes. A cache file's
name is a hash of everything that decides its content (file bytes, view, seed, augmentation,
preprocessing, trunk weights), so a rerun with the same inputs reuses it and anything else
misses it. View 0 is the plain photo; views 1..K are augmented (random resized crop, flip,
colour jitter) from the contract's decoded pixels, exactly those the bot would see.

How much each photo counts: ``1 / n_group ** power`` (a group: one class of one source), each
class then scaled to the same total. Hot dogs are the smaller class, and a few large, mostly
non-food sources hold as many negatives as all the food sources together: this keeps the
classes equal and lets small food sources outweigh their share of photos, without throwing
any away (power 0: classes balanced only; 1: every source of a class the same total).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from nothotdog.contract import INPUT_SIZE, RESIZE_METHOD, ImageDecodeError, decode_image
from nothotdog.contract.dataset import DatasetError, Example

CLEAN_VIEW = 0
DEFAULT_SOURCE_POWER = 0.5


@dataclass(frozen=True)
class AugmentParams:
    min_area: float = 0.5  # of the image kept by the random crop
    max_aspect: float = 4 / 3
    flip: bool = True
    jitter: float = 0.2  # brightness, contrast and saturation scaled by 1 +- jitter


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
    return augment(image, np.random.default_rng([seed, view, name_key]), params)


def example_weights(examples: Sequence[Example], power: float = DEFAULT_SOURCE_POWER,
                    grouped: Sequence[str] = ()) -> np.ndarray:  # fmt: skip
    """One weight per example, mean 1, every class summing to the same total. The sources in
    ``grouped`` count as one source: several small sources of one kind of photo then weigh
    like one source of their joint size, not like that many independent ones."""
    if not examples:
        return np.zeros(0, np.float32)

    def group(e: Example) -> tuple[int, str]:
        return e.label, "+".join(grouped) if e.source in grouped else e.source

    groups = Counter(map(group, examples))
    w = np.array([groups[group(e)] ** -power for e in examples], np.float64)
    labels = np.array([e.label for e in examples])
    classes = np.unique(labels)
    for c in classes:
        w[labels == c] /= w[labels == c].sum()
    return (w * len(examples) / len(classes)).astype(np.float32)


def source_shares(examples: Sequence[Example], weights: np.ndarray) -> dict[str, float]:
    """Each (class, source) group's share of the total weight: what the run records."""
    totals: Counter[str] = Counter()
    for e, w in zip(examples, weights, strict=True):
        totals[f"{e.label}:{e.source}"] += float(w)
    whole = sum(totals.values()) or 1.0
    return {k: round(v / whole, 4) for k, v in sorted(totals.items())}


@dataclass(frozen=True)
class FeatureCache:
    """The frozen trunk's outputs for one run's photos, read from ``folder`` when there."""

    predict: Callable[[np.ndarray], np.ndarray]  # uint8 images -> trunk outputs
    shape: tuple[int, ...]  # of one photo's output
    folder: Path
    trunk_id: str  # names the trunk: weights, cut, runtime, input size
    seed: int
    params: AugmentParams
    batch_size: int
    size: int = INPUT_SIZE

    def key(self, digests: Sequence[str], view: int) -> str:
        recipe = {
            "files": list(digests),
            "view": view,
            "seed": self.seed if view != CLEAN_VIEW else None,
            "augment": asdict(self.params) if view != CLEAN_VIEW else None,
            "input_size": self.size,
            "resize": RESIZE_METHOD,
            "trunk": self.trunk_id,
        }
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:24]

    def outputs(self, examples: Sequence[Example], digests: Sequence[str], view: int,
                desc: str) -> np.ndarray:  # fmt: skip
        """``float16 [n, *shape]`` trunk outputs for one view, from the cache when present."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{desc}-v{view}-{self.key(digests, view)}.npy"
        if path.exists():
            print(f"  {desc} view {view}: reusing {path.name}")
            return np.load(path)
        out = np.empty((len(examples), *self.shape), dtype=np.float16)
        step = self.batch_size

        def decode_batch(start: int) -> np.ndarray:
            chunk = examples[start : start + step]
            return np.stack([load_view(e, view, self.seed, self.params, self.size) for e in chunk])

        # Decode the next batch on a thread (Pillow releases the GIL) while the trunk runs.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(decode_batch, 0) if examples else None
            for start in tqdm(range(0, len(examples), step), desc=f"  {desc} view {view}",
                              unit="batch"):  # fmt: skip
                images = pending.result()
                nxt = start + step
                pending = pool.submit(decode_batch, nxt) if nxt < len(examples) else None
                out[start : start + len(images)] = self.predict(images)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out)
        os.replace(tmp, path)  # a run killed mid-write leaves no half cache behind
        return out


@dataclass
class Features:
    """The cached trunk outputs and what goes with them, for both phases and the records."""

    labels: list[str]
    positive: str
    train_ex: list[Example]
    val_ex: list[Example]
    train_views: list[np.ndarray]  # one clean view, then cfg.views augmented ones
    val_x: np.ndarray
    weights: np.ndarray  # each training photo's sampling weight (example_weights)
    train_digests: list[str]
    val_digests: list[str]
    seconds: float

    @property
    def y_train(self) -> np.ndarray:
        return np.array([e.label for e in self.train_ex])

    @property
    def y_val(self) -> np.ndarray:
        return np.array([e.label for e in self.val_ex])
