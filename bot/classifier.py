"""The classifier: load a model file, decode a photo, predict, and draw ``/why``'s heatmap.

No Telegram and no bot settings: this is the setup/predict surface that ``nothotdog classify``
and ``why``, the pipeline's threads, the benchmarks and the tests share, so a photo gets the
same answer everywhere. One onnxruntime call per photo in the bot (batching measured at most
1.09x the photos per second: VGG16 fills every core at batch 1, and cost 55 MB of activations
per photo); the command line batches files because it has them all at once.
"""

from __future__ import annotations

import enum
import importlib.resources
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from nothotdog.contract import ModelSpec, OpenedImage
from nothotdog.contract.heatmap import overlay, overlay_cost
from nothotdog.contract.imaging import (
    Buffer,
    decode_image,
    decode_picture,
    finish_picture,
    picture_cost,
    picture_size,
)
from nothotdog.contract.runtime import ModelMissing, OnnxModel, Runtime, load_onnx

SHIPPED_MODEL_FILE = "nothotdog.onnx"
# The shipped model's package: models/ installed as nothotdog/bot/shipped/ (see pyproject.toml).
SHIPPED_PACKAGE = "nothotdog.bot.shipped"
# The /why picture: longest side sent back (plenty for a phone screen), and the PhotoSize to
# draw on, the smallest with this many pixels on its shorter side (Telegram's 800 px one).
PICTURE_SIDE = 1024
PICTURE_MIN_SIDE = 480
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Verdict:
    label: str
    probability: float  # of ``label``, not necessarily of the positive class
    is_positive: bool
    p_positive: float  # P(hotdog), whatever the label: what the threshold is compared with
    probabilities: tuple[float, ...] = ()  # every label's, in the spec's label order


def shipped_model_path() -> Path:
    """The model that ships with nothotdog, wherever the bot runs from.

    An installed package has it as package data (``nothotdog/bot/shipped/``); a checkout or an
    editable install reads ``models/`` beside ``bot/``, where ``make model`` writes. Never the cwd.
    """
    try:
        packaged = Path(str(importlib.resources.files(SHIPPED_PACKAGE) / SHIPPED_MODEL_FILE))
    except (ModuleNotFoundError, TypeError):  # a checkout: nothotdog.bot.shipped isn't a package
        packaged = None
    if packaged is not None and packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[1] / "models" / SHIPPED_MODEL_FILE


def load_model(
    path: str | Path,
    *,
    threshold: float | None = None,
    onnx_threads: int = 0,
    runtime: Runtime = "auto",
) -> OnnxModel:
    """Load and check the model; ``threshold`` overrides the one in its metadata."""
    path = Path(path)
    if not path.is_file():
        raise ModelMissing(missing_model(path))
    model = load_onnx(path, intra_op_threads=onnx_threads, runtime=runtime)
    return model if threshold is None else with_threshold(model, threshold)


def missing_model(path: Path) -> str:
    """Why ``path`` is not there and what fixes it: the shipped model needs no training."""
    shipped = shipped_model_path()
    if path == shipped:
        return (
            f"the model that ships with nothotdog is missing ({path}). Reinstall nothotdog "
            "from your checkout or wheel (pip install --force-reinstall .), or in a checkout "
            "restore it (git checkout models/nothotdog.onnx), or set MODEL_PATH to an exported "
            "nothotdog .onnx file."
        )
    return (
        f"model file {path} does not exist. Fix MODEL_PATH (or --model), or leave it empty to "
        f"use the model that ships with nothotdog ({shipped})."
    )


def with_threshold(model: OnnxModel, threshold: float) -> OnnxModel:
    """The same session, deciding at ``threshold`` instead of the model's own."""
    return OnnxModel(engine=model.engine, spec=replace(model.spec, threshold=threshold),
                     path=model.path)  # fmt: skip


class NoWhy(enum.StrEnum):
    """Why a model cannot draw ``/why``'s picture."""

    NO_HEATMAP = "no_heatmap"  # the file has no heatmap output
    # The heatmap shows the positive label against the rest: for two classes that explains
    # either answer, for more it would not show the label the bot answered.
    NOT_TWO_CLASS = "not_two_class"


def why_unavailable(model: OnnxModel) -> NoWhy | None:
    """None when ``model`` can draw ``/why``'s picture, else the reason it cannot."""
    if not model.has_heatmap:
        return NoWhy.NO_HEATMAP
    if not model.spec.two_class:
        return NoWhy.NOT_TWO_CLASS
    return None


def verdict_from(spec: ModelSpec, row: np.ndarray) -> Verdict:
    """One row of probabilities as a verdict (the contract's decision rule)."""
    label, p = spec.verdict(row)
    return Verdict(label, p, is_positive=label == spec.positive_label,
                   p_positive=float(row[spec.positive_index]),
                   probabilities=tuple(float(x) for x in row))  # fmt: skip


def decode(model: OnnxModel, data: Buffer) -> np.ndarray:
    """The model input; contract.ImageDecodeError (safe to show a user) for unusable bytes."""
    return decode_image(data, size=model.spec.input_size)


def predict(model: OnnxModel, images: Sequence[np.ndarray]) -> list[Verdict]:
    """One onnxruntime call for all of ``images``."""
    return [verdict_from(model.spec, row) for row in model.predict(np.stack(images))]


def predict_with_heatmap(model: OnnxModel, image: np.ndarray) -> tuple[Verdict, np.ndarray]:
    """One image's verdict and its raw heatmap, in one onnxruntime call."""
    probs, heatmaps = model.explain(image[None])
    return verdict_from(model.spec, probs[0]), heatmaps[0]


def predict_with_features(model: OnnxModel, image: np.ndarray) -> tuple[Verdict, np.ndarray]:
    """One image's verdict and its ``features`` (what /teach compares), in one call."""
    probs, features = model.features(image[None])
    return verdict_from(model.spec, probs[0]), features[0]


def draw_jpeg(opened: OpenedImage, heatmap: np.ndarray, max_side: int = PICTURE_SIDE) -> bytes:
    """The opened photo (opened for ``max_side``) with ``heatmap`` over it, as a JPEG (Telegram
    recompresses photos anyway); closes ``opened``."""
    buffer = io.BytesIO()
    overlay(finish_picture(opened, max_side), heatmap).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def draw_cost(opened: OpenedImage, max_side: int = PICTURE_SIDE) -> int:
    """Bytes :func:`draw_jpeg` holds at its peak: the decode, or else the picture, the drawing
    and the JPEG (at most 3 bytes a pixel), whichever is more."""
    long, short = sorted(picture_size(opened, max_side), reverse=True)
    drawing = 4 * long * short + overlay_cost(long, short) + 3 * long * short
    return max(picture_cost(opened, max_side), drawing)


def why_picture(model: OnnxModel, data: bytes, max_side: int = PICTURE_SIDE
                ) -> tuple[Verdict, Image.Image]:  # fmt: skip
    """The verdict and the photo with its heatmap over it, in one go (``nothotdog why``)."""
    verdict, heatmap = predict_with_heatmap(model, decode(model, data))
    return verdict, overlay(decode_picture(data, max_side), heatmap)
