"""Any labels, end to end: nothotdog-train's run records, nothotdog-export, ``nothotdog
classify`` and the real bot against the fake Bot API server, for a three-class model
(red/green/blue shapes) and a "not X" model (cat/not_cat).

The trained runs are tiny (``--weights none --input-size 32``); export takes 224-px models
only, so each run's model.keras is replaced by a hand-set colour reader at 224 px before
export: everything else (labels, positive label, display texts, metrics) is what training
wrote.
"""

# ruff: noqa: F811  (the tests take the fixtures imported from tests/bot/conftest.py)

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import keras

from nothotdog.bot import replies
from nothotdog.bot.classifier import Verdict, load_model
from nothotdog.bot.cli import main as cli_main
from nothotdog.contract import OUTPUT_NAME, ModelSpec
from nothotdog.contract.runtime import OnnxModel
from nothotdog.export.__main__ import main as export_main
from nothotdog.training.__main__ import main as train_main

# The bot's fixtures; this file sits outside tests/bot so that TensorFlow (loaded for training
# and export) is not in the process yet when tests/bot measures memory.
from tests.bot.conftest import (  # noqa: F401
    StartBot,
    settings,
    start_bot,
    telegram,
    tiny_model,
    tiny_model_path,
)
from tests.fakebot import FakeTelegram
from tests.imagefiles import encode
from tests.kerasmodel import vgg_shaped

GROUP = FakeTelegram.group_chat()
COLOURS = {"red": (210, 40, 40), "green": (40, 190, 50), "blue": (40, 60, 210)}
BGR_CHANNEL = {"red": 2, "green": 1, "blue": 0}  # after VGGPreprocess the channels are B, G, R
TINY = ["--weights", "none", "--input-size", "32", "--precision", "float32", "--head-epochs", "1",
        "--finetune-epochs", "0", "--batch-size", "8"]  # fmt: skip


def shape_photo(colour: tuple[int, int, int], rng: np.random.Generator, side: int = 96
                ) -> Image.Image:  # fmt: skip
    """A circle, box or triangle in ``colour`` (with some noise) on a light grey background."""
    image = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(170, 230, 3)))
    draw = ImageDraw.Draw(image)
    fill = tuple(int(np.clip(c + rng.integers(-25, 25), 0, 255)) for c in colour)
    x, y = (int(v) for v in rng.integers(4, side // 4, 2))
    size = int(rng.integers(side // 2, side - max(x, y) - 2))
    kind = int(rng.integers(3))
    if kind == 0:
        draw.ellipse((x, y, x + size, y + size), fill=fill)
    elif kind == 1:
        draw.rectangle((x, y, x + size, y + size), fill=fill)
    else:
        draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill=fill)
    return image


def make_photos(root: Path, colours: dict[str, tuple[int, int, int]], per_class: int,
                seed: int) -> Path:  # fmt: skip
    rng = np.random.default_rng(seed)
    for label, colour in colours.items():
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            shape_photo(colour, rng).save(root / label / f"shapes__{i:02d}.jpg", quality=90)
    return root


def colour_reader(channels: list[int]) -> keras.Model:
    """A 224-px stand-in for the trained model (``vgg_shaped``): class k's logit grows with
    colour channel ``channels[k]`` against the mean of the three."""
    model = vgg_shaped(6, len(channels), "colours")
    k1 = np.zeros((3, 3, 3, 6), np.float32)
    for c in range(3):  # filters 2c, 2c+1: +channel and -channel (their ReLUs add back up)
        k1[1, 1, c, 2 * c], k1[1, 1, c, 2 * c + 1] = 0.01, -0.01
    k2 = np.zeros((3, 3, 6, 6), np.float32)
    k2[1, 1] = np.eye(6)
    dense = np.zeros((6, len(channels)), np.float32)
    for k, c in enumerate(channels):
        for other in range(3):
            weight = 6.0 if other == c else -3.0
            dense[2 * other, k], dense[2 * other + 1, k] = weight, -weight
    model.get_layer("block1_conv1").set_weights([k1, np.zeros(6, np.float32)])
    model.get_layer("block2_conv1").set_weights([k2, np.zeros(6, np.float32)])
    model.get_layer(OUTPUT_NAME).set_weights([dense, np.zeros(len(channels), np.float32)])
    return model


def train_and_export(root: Path, colours: dict[str, tuple[int, int, int]], channels: list[int],
                     *train_args: str, int8: bool = True) -> Path:  # fmt: skip
    """nothotdog-train on generated photos, then the export (int8: behind its accuracy check)."""
    train = make_photos(root / "data" / "train", colours, 20, seed=1)
    val = make_photos(root / "data" / "val", colours, 8, seed=2)
    run = root / "run"
    args = ["--data", str(train), "--val", str(val), "--out", str(run), *TINY, *train_args]
    assert train_main(args) == 0
    colour_reader(channels).save(run / "model.keras")
    out = run / "model.onnx"
    quantize = ["--quantize", "int8", "--calibration", str(train), "--calibration-images", "30"]
    assert export_main([str(run), "--out", str(out), "--check", str(val),
                        *(quantize if int8 else [])]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def rgb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    labels = sorted(COLOURS)  # output columns are in folder order
    return train_and_export(tmp_path_factory.mktemp("rgb"), COLOURS,
                            [BGR_CHANNEL[label] for label in labels], "--display", "red=🟥 Red")


@pytest.fixture(scope="module")
def cat_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    colours = {"cat": COLOURS["red"], "not_cat": COLOURS["blue"]}
    return train_and_export(tmp_path_factory.mktemp("cat"), colours,
                            [BGR_CHANNEL["red"], BGR_CHANNEL["blue"]], "--positive", "cat",
                            int8=False)  # the three-class model covers int8


@pytest.fixture(scope="module")
def rgb(rgb_path: Path) -> OnnxModel:
    return load_model(rgb_path, onnx_threads=1)


@pytest.fixture(scope="module")
def cat(cat_path: Path) -> OnnxModel:
    return load_model(cat_path, onnx_threads=1)


def photo(colour: str, seed: int = 99) -> bytes:
    """A new photo, not one trained on."""
    return encode(shape_photo(COLOURS[colour], np.random.default_rng(seed), side=320))


def test_the_run_records_and_the_file_carry_labels_and_display_texts(
    rgb: OnnxModel, cat: OnnxModel
) -> None:
    run = json.loads((rgb.path.parent / "labels.json").read_text())
    assert run == {"labels": ["blue", "green", "red"], "positive_label": "blue",
                   "display": {"blue": "Blue", "green": "Green", "red": "🟥 Red"}}  # fmt: skip
    assert rgb.spec.labels == ("blue", "green", "red")
    assert dict(rgb.spec.display) == run["display"]
    assert cat.spec.positive_label == "cat"
    assert dict(cat.spec.display) == {"cat": "✅ Cat!", "not_cat": "🚫 Not cat"}


def test_classify_prints_the_label_and_every_probability(
    rgb_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODEL_PATH", str(rgb_path))
    monkeypatch.delenv("THRESHOLD", raising=False)
    (tmp_path / "red.jpg").write_bytes(photo("red"))
    assert cli_main(["classify", "red.jpg"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header == "path\tlabel\tprobability\tverdict"
    path, label, probability, text = line.split("\t")
    assert (path, label) == ("red.jpg", "red") and float(probability) > 0.5
    assert text.startswith("🟥 Red (")
    assert cli_main(["classify", "red.jpg", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["label"] == "red" and set(row["probabilities"]) == {"blue", "green", "red"}
    assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


async def test_the_bot_answers_with_the_labels_texts_and_describes_the_model(
    telegram: FakeTelegram, start_bot: StartBot, rgb: OnnxModel
) -> None:
    telegram.can_read_all_group_messages = False
    await start_bot(model=rgb)
    answers = {c: await telegram.reply_text(telegram.push_photo(photo(c))) for c in COLOURS}
    assert re.fullmatch(r"🟥 Red \(\d+%\)(, or .*)?", answers["red"])
    assert answers["green"].startswith("Green (") and answers["blue"].startswith("Blue (")
    about = await telegram.reply_text(telegram.push_command("/about"))
    assert "Labels: blue (Blue), green (Green), red (🟥 Red)" in about
    start = await telegram.reply_text(telegram.push_command("/start"))
    assert "Blue, Green or Red" in start and "/classify" in start
    # In a group with privacy mode on the bot sees only commands; each answers the photo.
    for command, seed in (("/classify", 5), ("/why", 6)):
        sent = telegram.push_photo(photo("red", seed=seed), GROUP)
        telegram.push_command(command, GROUP, reply_to=sent)
        answers[command] = await telegram.reply_text(sent)
    assert answers["/classify"].startswith("🟥 Red (")
    assert answers["/why"] == replies.why_two_class_only()


async def test_a_not_x_model_reads_x_or_not_x(
    telegram: FakeTelegram, start_bot: StartBot, cat: OnnxModel
) -> None:
    await start_bot(model=cat)
    assert re.fullmatch(r"✅ Cat! \(\d+%\)", await telegram.reply_text(
        telegram.push_photo(photo("red"))))  # fmt: skip
    assert re.fullmatch(r"🚫 Not cat \(\d+%\)", await telegram.reply_text(
        telegram.push_photo(photo("blue"))))  # fmt: skip
    start = await telegram.reply_text(telegram.push_command("/start"))
    assert "Cat or not" in start


async def test_threshold_is_ignored_with_a_warning_for_more_than_two_classes(
    telegram: FakeTelegram, start_bot: StartBot, rgb: OnnxModel, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nothotdog.bot"):
        await start_bot(model=rgb, threshold=0.9)
    assert "THRESHOLD is ignored" in caplog.text
    assert (await telegram.reply_text(telegram.push_photo(photo("red")))).startswith("🟥 Red (")


def test_a_close_call_names_the_runner_up_and_the_hotdog_texts_stay() -> None:
    spec = ModelSpec(labels=("blue", "green", "red"), positive_label="blue")
    close = Verdict("red", 0.5, False, 0.1, (0.1, 0.4, 0.5))
    clear = Verdict("red", 0.8, False, 0.1, (0.1, 0.1, 0.8))
    assert replies.verdict(close, spec) == "Red (50%), or Green (40%)"
    assert replies.verdict(clear, spec) == "Red (80%)"
    assert replies.verdict_mark(clear, "", spec=spec) == "Red 80%"
    hotdog = ModelSpec()  # a file without display texts: the hot-dog words
    assert replies.verdict(Verdict("hot_dog", 0.97, True, 0.97), hotdog) == "🌭 Hotdog! (97%)"
    assert replies.verdict(Verdict("not_hot_dog", 0.92, False, 0.08), hotdog) == (
        "🚫 Not hotdog (92%)")  # fmt: skip
