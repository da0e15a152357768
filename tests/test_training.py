"""Training on tiny synthetic photos: artefacts, metrics, cache reuse, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from nothotdog.training.__main__ import main as train_main
from nothotdog.training.features import AugmentParams, augment

SMALL = ["--weights", "none", "--input-size", "32", "--views", "1", "--precision", "float32",
         "--head-epochs", "1", "--finetune-epochs", "1", "--finetune-samples", "64",
         "--batch-size", "8"]  # fmt: skip


def make_folder(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    """Red-ish photos are hot dogs, blue-ish ones are not; two source tags."""
    rng = np.random.default_rng(seed)
    for label, colour in (("hot_dog", (200, 40, 30)), ("not_hot_dog", (30, 60, 200))):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.integers(-40, 40, (40, 48, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / label / f"src{i % 2}__{i}.jpg")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("data")
    return make_folder(base / "train", 8, seed=1), make_folder(base / "val", 4, seed=2)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    args = ["--data", str(data[0]), "--val", str(data[1]), "--out", str(out), *SMALL]
    assert train_main(args) == 0
    return out


def test_run_folder_holds_every_artefact(run: Path):
    for name in ("model.keras", "labels.json", "metrics.json", "history.json", "config.json",
                 "files.json"):  # fmt: skip
        assert (run / name).is_file(), name
    assert len(list(run.glob("*.png"))) >= 4  # curves, confusion matrix, ROC, worst mistakes
    assert json.loads((run / "labels.json").read_text()) == {
        "labels": ["hot_dog", "not_hot_dog"], "positive_label": "hot_dog",
        "display": {"hot_dog": "🌭 Hotdog!", "not_hot_dog": "🚫 Not hotdog"},
    }  # fmt: skip
    history = json.loads((run / "history.json").read_text())
    assert set(history) == {"phase1", "phase2"}
    config = json.loads((run / "config.json").read_text())
    assert config["weights_source"] == "random initialisation"
    assert config["data_summary"]["train"]["per_label"] == {"hot_dog": 8, "not_hot_dog": 8}
    files = json.loads((run / "files.json").read_text())
    assert len(files["train"]) == 16 and len(files["train"][0]["sha256"]) == 64


def test_metrics_have_every_key_overall_and_per_source(run: Path):
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"threshold", "threshold_rule", "final_phase", "val", "phase1", "phase2"} <= set(metrics)
    keys = {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "confusion_matrix"}
    assert keys <= set(metrics["val"])
    assert set(metrics["val"]["per_source"]) == {"src0", "src1"}
    assert keys <= set(metrics["val"]["per_source"]["src0"])
    assert 0.0 < metrics["threshold"] < 1.0


def test_saved_model_takes_uint8_and_is_float32(run: Path):
    import keras

    model = keras.saving.load_model(run / "model.keras")
    assert model.input.dtype == "uint8"
    assert all(w.dtype == "float32" for w in model.weights)
    probs = model.predict(np.zeros((2, 32, 32, 3), np.uint8), verbose=0)
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("module", ["training.layers", "nothotdog.training.layers"])
def test_a_model_saved_by_an_older_layout_still_loads(run: Path, tmp_path: Path, module: str):
    """Older files name VGGPreprocess's module as it was then: ``training.layers`` (before the
    ``nothotdog`` namespace) or ``nothotdog.training.layers`` (before it joined
    training.model). Keras finds it by its registered name, ``nothotdog>VGGPreprocess``."""
    import zipfile

    from nothotdog.training.evaluate import load_predictor

    old = tmp_path / "model.keras"
    with zipfile.ZipFile(run / "model.keras") as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                text = data.decode()
                assert '"module": "nothotdog.training.model"' in text
                data = text.replace('"nothotdog.training.model"', f'"{module}"').encode()
            dst.writestr(item, data)
    loaded = load_predictor(old)
    probs = loaded.predict(np.zeros((2, 32, 32, 3), np.uint8))
    assert np.asarray(probs).shape[0] == 2


def test_rerun_reuses_the_feature_cache(run: Path, data, capsys):
    cache = sorted((run / "cache").glob("*.npy"))
    stamps = [p.stat().st_mtime_ns for p in cache]
    assert len(cache) == 3  # val, train clean, train augmented
    args = ["--data", str(data[0]), "--val", str(data[1]), "--out", str(run), *SMALL]
    assert train_main(args) == 0
    assert "reusing" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in sorted((run / "cache").glob("*.npy"))] == stamps


def test_several_runs_average_into_one_model(run: Path, data, tmp_path: Path):
    """--init-from with several runs and no epochs is a model soup: every weight the mean."""
    import keras

    common = ["--data", str(data[0]), "--val", str(data[1]), *SMALL,
              "--cache-dir", str(run / "cache")]  # fmt: skip
    other, soup = tmp_path / "other", tmp_path / "soup"
    assert train_main([*common, "--out", str(other), "--finetune-lr", "0.001"]) == 0
    soup_args = ["--init-from", str(run), str(other), "--head-epochs", "0",
                 "--finetune-epochs", "0", "--no-calibrate"]  # fmt: skip
    assert train_main([*common, "--out", str(soup), *soup_args]) == 0
    members = [keras.saving.load_model(r / "model.keras").get_weights() for r in (run, other)]
    assert any(not np.array_equal(a, b) for a, b in zip(*members, strict=True))
    for mean, a, b in zip(keras.saving.load_model(soup / "model.keras").get_weights(), *members,
                          strict=True):  # fmt: skip
        np.testing.assert_allclose(mean, (a + b) / 2, rtol=1e-6, atol=1e-7)
    config = json.loads((soup / "config.json").read_text())["config"]
    assert config["init_from"] == [str(run), str(other)]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("empty", "at least two"),
        ("one_class", "at least two"),
        ("unreadable", "cannot use training image"),
        ("missing", "is not a folder"),
    ],
)
def test_bad_data_folder_gives_a_clear_error(tmp_path: Path, capsys, layout: str, message: str):
    data = tmp_path / "data"
    if layout == "empty":
        data.mkdir()
    elif layout == "one_class":
        make_folder(data, 2)
        shutil.rmtree(data / "not_hot_dog")
    elif layout == "unreadable":
        make_folder(data, 3)
        (data / "hot_dog" / "src0__broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code = train_main(["--data", str(data), "--val-split", "0.34", "--out", str(tmp_path / "o"),
                       *SMALL])  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err


def test_augment_keeps_shape_and_is_seeded():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    params = AugmentParams()
    a = augment(image, np.random.default_rng(5), params)
    b = augment(image, np.random.default_rng(5), params)
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, image)


def test_the_onnx_trunk_is_float32_whatever_the_training_precision():
    """On CPUs with AVX512-BF16 or AMX, training runs under mixed_bfloat16; the trunk it
    converts for the int8 feature cache must still be float32 (onnxruntime has no bfloat16
    Conv on CPU: "Type 'tensor(bfloat16)' of input parameter ... of operator (Conv) ... is
    invalid")."""
    import onnx
    import onnxruntime as ort

    from nothotdog.training.int8 import keras_to_onnx
    from nothotdog.training.model import build_classifier, precision_policy, split_at

    with precision_policy("mixed_bfloat16"):
        trunk, _ = split_at(build_classifier(2, 0.5, 32), "block2_pool")
        assert trunk.get_layer("block1_conv1").compute_dtype == "bfloat16"
        proto = keras_to_onnx(trunk, 32)
    graph = proto.graph
    values = [*graph.input, *graph.output, *graph.value_info]
    types = {t.data_type for t in graph.initializer}
    types |= {v.type.tensor_type.elem_type for v in values}
    types |= {a.i for n in graph.node if n.op_type == "Cast" for a in n.attribute if a.name == "to"}
    assert onnx.TensorProto.BFLOAT16 not in types
    session = ort.InferenceSession(proto.SerializeToString())  # where the bug raised
    assert session.run(None, {"image": np.zeros((1, 32, 32, 3), np.uint8)})[0].shape == (
        1, 8, 8, 128)  # fmt: skip


def test_a_mixed_bfloat16_run_fills_the_int8_cache_and_saves_float32(data, tmp_path: Path):
    """What ``--precision auto`` picks on an AVX512-BF16 or AMX CPU, end to end."""
    import keras

    out = tmp_path / "run"
    args = ["--data", str(data[0]), "--val", str(data[1]), "--out", str(out), *SMALL]
    assert train_main([x if x != "float32" else "mixed_bfloat16" for x in args]) == 0
    assert (out / "trunk" / "trunk-int8.onnx").is_file()
    model = keras.saving.load_model(out / "model.keras")
    assert model.get_layer("block1_conv1").compute_dtype == "float32"


def test_an_extra_folder_of_one_class_joins_training_under_its_source_tag(data, tmp_path: Path):
    """What ``nothotdog feedback export`` writes: some classes only, files tagged feedback."""
    extra = tmp_path / "votes" / "not_hot_dog"
    extra.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (40, 48), (30, 60, 200)).save(extra / f"feedback__u{i}.jpg")
    out = tmp_path / "run"
    args = ["--data", str(data[0]), "--val", str(data[1]), "--extra", str(tmp_path / "votes"),
            "--out", str(out), *SMALL]  # fmt: skip
    assert train_main(args) == 0
    shares = json.loads((out / "metrics.json").read_text())["sampling"]["shares"]
    assert shares["1:feedback"] > 0  # class 1: not_hot_dog


def test_display_and_positive_are_checked_before_training():
    from nothotdog.training.train import choose_positive, display_texts

    labels = ["cat", "not_cat"]
    assert choose_positive(labels, None) == "cat"
    assert choose_positive(labels, "not_cat") == "not_cat"
    assert display_texts(labels, "cat", ["cat=🐱 Cat!"]) == {"cat": "🐱 Cat!",
                                                             "not_cat": "🚫 Not cat"}  # fmt: skip
    for bad in (["dog=Dog"], ["cat"], ["cat= "]):
        with pytest.raises(ValueError, match="--display"):
            display_texts(labels, "cat", bad)
    with pytest.raises(ValueError, match="--positive"):
        choose_positive(labels, "dog")
