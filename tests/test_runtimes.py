"""OpenVINO and onnxruntime run the same file and give the same answers; OpenVINO that cannot
run a file hands it to onnxruntime with one log line."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from nothotdog.bot.settings import shipped_model_path
from nothotdog.contract import INPUT_SIZE, decode_image
from nothotdog.contract import runtime as runtimes
from nothotdog.contract.runtime import load_onnx
from nothotdog.export.checks import generated_images
from tests.imagefiles import encode
from tests.tinymodel import build_tiny_model

FIXTURES = Path(__file__).parent / "fixtures"
# Both run the same int8 convolutions but may round an activation differently here and there:
# on these images the shipped file's probabilities differ by under 0.003, and every verdict
# agrees.
PROBABILITY_TOLERANCE = 0.01
# The heatmap is in logits (its mean is the verdict's logit, tens of units across a photo);
# /why draws it scaled to its own range, so it is compared as a share of that range (under
# 8% seen), and where it is hottest must agree.
HEATMAP_TOLERANCE = 0.1


def photo_like_images() -> np.ndarray:
    """The two fixture photos, cropped, mirrored, recoloured and re-encoded as JPEG, plus the
    export's synthetic stand-ins: pixels as the bot decodes them."""
    images = []
    for name in ("hotdog.jpg", "not_hotdog.jpg"):
        photo = Image.open(FIXTURES / name).convert("RGB")
        w, h = photo.size
        variants = [
            photo,
            ImageOps.mirror(photo),
            photo.crop((w // 8, h // 8, w - w // 8, h - h // 8)),
            photo.crop((0, 0, w * 2 // 3, h)),
            ImageEnhance.Color(photo).enhance(0.3),
            ImageEnhance.Brightness(photo).enhance(1.4),
            photo.rotate(10, expand=True),
            ImageOps.grayscale(photo).convert("RGB"),
        ]
        images += [decode_image(encode(v, "JPEG", quality=85)) for v in variants]
    return np.concatenate([np.stack(images), generated_images(8, seed=11)])


@pytest.fixture(scope="module")
def both() -> dict[str, runtimes.OnnxModel]:
    return {name: load_onnx(shipped_model_path(), 1, name)
            for name in ("onnxruntime", "openvino")}  # fmt: skip


def test_auto_picks_openvino_when_it_is_installed(tmp_path: Path) -> None:
    model = load_onnx(build_tiny_model(tmp_path / "tiny.onnx"), 1)
    assert model.runtime == ("openvino" if runtimes.openvino_installed() else "onnxruntime")


def test_both_runtimes_read_the_same_metadata_and_ports(both) -> None:
    ort, ov = both["onnxruntime"], both["openvino"]
    assert (ort.runtime, ov.runtime) == ("onnxruntime", "openvino")
    assert ov.spec == ort.spec and ov.engine.metadata == ort.engine.metadata
    assert ov.output_names == ort.output_names == ("probabilities", "heatmap", "features")
    assert ov.engine.inputs[0].shape[1:] == ort.engine.inputs[0].shape[1:]


def test_same_verdicts_and_heatmaps_on_photo_like_images(both) -> None:
    images = photo_like_images()
    ort_probs, ort_maps = both["onnxruntime"].explain(images)
    ov_probs, ov_maps = both["openvino"].explain(images)
    spec = both["onnxruntime"].spec
    assert spec.decide(ov_probs).tolist() == spec.decide(ort_probs).tolist()
    np.testing.assert_allclose(ov_probs, ort_probs, atol=PROBABILITY_TOLERANCE)
    spread = np.ptp(ort_maps, axis=(1, 2))
    assert (np.abs(ov_maps - ort_maps).max(axis=(1, 2)) <= HEATMAP_TOLERANCE * spread).all()
    hottest = [m.reshape(len(m), -1).argmax(axis=1).tolist() for m in (ov_maps, ort_maps)]
    assert hottest[0] == hottest[1]
    # Batched and one by one agree within each runtime, so the bot may batch either way.
    single = np.concatenate([both["openvino"].predict(image[None]) for image in images[:4]])
    np.testing.assert_allclose(single, ov_probs[:4], atol=1e-5)


def test_float_model_agrees_to_float_precision(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "tiny.onnx", heatmap=True)
    images = generated_images(8, seed=3, size=INPUT_SIZE)
    ort_out = load_onnx(path, 1, "onnxruntime").explain(images)
    ov_out = load_onnx(path, 1, "openvino").explain(images)
    for a, b in zip(ov_out, ort_out, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_openvino_that_cannot_compile_falls_back_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A device this machine does not have: OpenVINO's own compile error, not a stand-in.
    monkeypatch.setattr(runtimes, "OPENVINO_DEVICE", "NO_SUCH_DEVICE")
    path = build_tiny_model(tmp_path / "tiny.onnx")
    with caplog.at_level(logging.WARNING, logger=runtimes.__name__):
        model = load_onnx(path, 1, "openvino")
    assert model.runtime == "onnxruntime"
    (record,) = caplog.records
    message = record.getMessage()
    assert "OpenVINO cannot run tiny.onnx" in message and "onnxruntime" in message
    assert "\n" not in message
    assert model.predict(generated_images(2)).shape == (2, 2)


def test_unknown_runtime_is_refused(tmp_path: Path) -> None:
    with pytest.raises(runtimes.ModelLoadError, match="runtime must be one of"):
        load_onnx(build_tiny_model(tmp_path / "tiny.onnx"), 1, "tensorrt")  # type: ignore[arg-type]
