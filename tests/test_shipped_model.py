"""The model that ships in models/: its contract, its metadata, and two photos it must get right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nothotdog.bot.settings import shipped_model_path
from nothotdog.contract import INPUT_SIZE, LABELS, POSITIVE_LABEL, MetaKey, load_image_file
from nothotdog.contract.runtime import OnnxModel, load_onnx

SHIPPED = shipped_model_path()
FIXTURES = Path(__file__).parent / "fixtures"
MAX_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def shipped() -> OnnxModel:
    assert SHIPPED.is_file(), f"{SHIPPED} is missing: the bot's default model must ship"
    return load_onnx(SHIPPED)


def test_file_is_small_enough_to_ship():
    assert SHIPPED.stat().st_size <= MAX_BYTES


def test_metadata_follows_the_contract(shipped: OnnxModel):
    spec = shipped.spec
    assert spec.labels == LABELS and spec.positive_label == POSITIVE_LABEL
    assert spec.input_size == INPUT_SIZE
    assert 0.0 < spec.threshold < 1.0
    assert spec.metrics["accuracy"] >= 0.95
    meta = shipped.engine.metadata
    assert "int8" in meta[MetaKey.QUANTIZATION]
    assert len(meta[MetaKey.WEIGHTS_SHA256]) == 64
    assert json.loads(meta[MetaKey.DATA_SUMMARY])["train"]["n"] > 1000
    for key in (MetaKey.WEIGHTS_SOURCE, MetaKey.MODEL_VERSION, MetaKey.CREATED):
        assert meta[key]


def test_input_is_uint8_nhwc_with_any_batch(shipped: OnnxModel):
    (inp,) = shipped.engine.inputs
    assert inp.dtype == "uint8" and inp.shape[1:] == (INPUT_SIZE, INPUT_SIZE, 3)
    for batch in (1, 3):
        probs = shipped.predict(np.zeros((batch, INPUT_SIZE, INPUT_SIZE, 3), np.uint8))
        assert probs.shape == (batch, len(LABELS))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize(("name", "expected"), [("hotdog.jpg", "hot_dog"),
                                                 ("not_hotdog.jpg", "not_hot_dog")])  # fmt: skip
def test_labels_fixture_photos(shipped: OnnxModel, name: str, expected: str):
    image = load_image_file(FIXTURES / name)
    (probs,) = shipped.predict(image[None])
    label, confidence = shipped.spec.verdict(probs)
    assert label == expected and confidence > 0.75


def test_heatmap_is_hottest_on_the_hot_dog(shipped: OnnxModel):
    """The /why output of the shipped file (docs/why-hotdog.png): exact, and on the hot dog,
    which runs from the left edge to the lower middle of the fixture photo (the chips are upper
    right)."""
    assert shipped.has_heatmap and MetaKey.HEATMAP in shipped.spec.extra
    image = load_image_file(FIXTURES / "hotdog.jpg")
    probs, heatmaps = shipped.explain(image[None])
    assert np.array_equal(probs, shipped.predict(image[None]))
    assert heatmaps.shape == (1, 7, 7)
    logit = np.log(probs[0, 0] / probs[0, 1])
    assert heatmaps[0].mean() == pytest.approx(logit, abs=1e-4)
    row, col = np.unravel_index(np.argmax(heatmaps[0]), (7, 7))
    assert row >= 1 and col <= 4
    assert heatmaps[0][:3, 4:].max() < heatmaps[0].max() / 2  # the chips


def test_about_gives_test_and_val_figures_per_source(shipped: OnnxModel):
    from nothotdog.bot.replies import about

    text = about(shipped.spec)
    per_source = shipped.spec.test_metrics["per_source"]
    assert "By source (test, validation):" in text
    for name, figures in per_source.items():
        assert f"  {name}: {figures['accuracy']:.1%} ({figures['n']} photos), " in text
