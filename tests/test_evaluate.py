"""Report files and ``nothotdog-eval`` end to end, on synthetic images and tiny real models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nothotdog.contract import LABELS, POSITIVE_LABEL
from nothotdog.contract.dataset import list_examples
from nothotdog.training.evaluate import (
    EvaluationError,
    format_summary,
    main,
    predict_examples,
    write_evaluation,
)
from nothotdog.training.metrics import compute_metrics
from tests.tinymodel import build_tiny_model, redness_probability

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPORT_PNGS = ["confusion_matrix.png", "roc_curve.png", "worst_mistakes.png"]
REPO = Path(__file__).resolve().parents[1]

# (label, file name, colour): the tiny models call red-ish "hot_dog". Two deliberate misses:
# a blue hotdog photo and a red not-hotdog.
IMAGES = [
    ("hot_dog", "siteA__0.png", (220, 60, 40)),
    ("hot_dog", "siteA__1.png", (200, 90, 60)),
    ("hot_dog", "siteA__2.jpg", (240, 30, 30)),
    ("hot_dog", "siteB__0.png", (180, 100, 80)),
    ("hot_dog", "siteB__blue.png", (40, 60, 200)),
    ("not_hot_dog", "siteA__0.png", (30, 200, 70)),
    ("not_hot_dog", "siteA__1.png", (60, 80, 240)),
    ("not_hot_dog", "siteB__0.png", (90, 160, 90)),
    ("not_hot_dog", "siteB__red.png", (230, 50, 50)),
    ("not_hot_dog", "plain.png", (100, 100, 180)),
]
EXPECTED_CM = [[4, 1], [1, 4]]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for label, name, colour in IMAGES:
        (root / label).mkdir(exist_ok=True)
        Image.new("RGB", (48, 40), colour).save(root / label / name, quality=95)
    return root


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


def oracle(data_dir: Path) -> np.ndarray:
    """P(hot_dog) the tiny models give each image (in list_examples order): solid colours."""
    return np.array([
        redness_probability(np.asarray(Image.open(e.path).convert("RGB")).mean(axis=(0, 1)))
        for e in list_examples(data_dir, LABELS)
    ])


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


# --- report ----------------------------------------------------------------------------------


def test_write_evaluation_writes_metrics_and_plots(tmp_path, data_dir):
    examples = list_examples(data_dir, LABELS)
    p_hot = oracle(data_dir)
    probs = np.stack([p_hot, 1 - p_hot], axis=1)
    y = [e.label for e in examples]
    history = {
        "phase1": {"loss": [0.9, 0.6, 0.5], "val_loss": [0.8, 0.7, 0.6],
                   "accuracy": [0.6, 0.7, 0.8], "val_accuracy": [0.6, 0.65, 0.7]},
        "phase2": {"loss": [0.4, 0.3], "val_loss": [0.5, 0.45],
                   "accuracy": [0.85, 0.9], "val_accuracy": [0.75, 0.8]},
    }
    out = tmp_path / "report"
    metrics = write_evaluation(out, y, probs, examples, LABELS, POSITIVE_LABEL, 0.5, history)

    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["confusion_matrix"] == EXPECTED_CM
    assert sorted(metrics["per_source"]) == ["siteA", "siteB", "untagged"]
    for name in [*REPORT_PNGS, "training_curves.png"]:
        assert is_png(out / name), name

    summary = format_summary(metrics)
    lines = summary.splitlines()
    assert lines[1].split()[:3] == ["overall", "10", "0.800"]
    assert [line.split()[0] for line in lines[2:5]] == ["siteA", "siteB", "untagged"]
    # "untagged" holds one not-hotdog, classified right: recall is undefined there
    assert lines[4].split() == ["untagged", "1", "1.000", "-", "-"]
    assert "threshold 0.5" in lines[-1]


def test_report_without_mistakes_or_second_class_still_writes_every_png(tmp_path, data_dir):
    examples = [e for e in list_examples(data_dir, LABELS) if e.label == 1][:2]
    probs = np.array([[0.1, 0.9], [0.2, 0.8]])
    out = tmp_path / "one-class"
    metrics = write_evaluation(out, [1, 1], probs, examples, LABELS, POSITIVE_LABEL, 0.5)
    assert metrics["roc_auc"] is None and metrics["accuracy"] == 1.0
    for name in REPORT_PNGS:
        assert is_png(out / name), name
    assert not (out / "training_curves.png").exists()


def test_worst_mistakes_carry_heatmaps_when_the_model_has_them(tmp_path, data_dir):
    examples = list_examples(data_dir, LABELS)
    p_hot = oracle(data_dir)
    probs = np.stack([p_hot, 1 - p_hot], axis=1)
    y = [e.label for e in examples]
    asked: list[str] = []

    def heatmap(path: Path) -> np.ndarray:
        asked.append(path.name)
        cells = np.zeros((7, 7), np.float32)
        cells[0, 0] = 1.0
        return cells

    plain, explained = tmp_path / "plain", tmp_path / "explained"
    write_evaluation(plain, y, probs, examples, LABELS, POSITIVE_LABEL, 0.5)
    write_evaluation(explained, y, probs, examples, LABELS, POSITIVE_LABEL, 0.5, heatmap=heatmap)
    assert sorted(asked) == ["siteB__blue.png", "siteB__red.png"]  # the two mistakes only
    assert is_png(explained / "worst_mistakes.png")
    before = np.asarray(Image.open(plain / "worst_mistakes.png").convert("RGB"), np.float32)
    after = np.asarray(Image.open(explained / "worst_mistakes.png").convert("RGB"), np.float32)
    assert before.shape != after.shape or np.abs(before - after).mean() > 1.0


def test_eval_draws_the_heatmaps_of_an_onnx_file_that_has_them(tmp_path, data_dir):
    from nothotdog.training.evaluate import load_predictor

    plain = load_predictor(build_tiny_model(tmp_path / "plain.onnx"))
    explained = load_predictor(build_tiny_model(tmp_path / "heatmap.onnx", heatmap=True))
    assert plain.heatmap is None and explained.heatmap is not None
    (bad,) = [e for e in list_examples(data_dir, LABELS) if e.path.name == "siteB__red.png"]
    assert explained.heatmap(bad.path).shape == (7, 7)
    out = tmp_path / "eval"
    assert main([str(tmp_path / "heatmap.onnx"), str(data_dir), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    assert is_png(out / "worst_mistakes.png")


# --- predict_examples -------------------------------------------------------------------------


def test_predict_examples_batches_agree_and_follow_the_pixels(data_dir, onnx_model):
    from nothotdog.contract.runtime import load_onnx

    model = load_onnx(onnx_model)
    examples = list_examples(data_dir, LABELS)
    one = predict_examples(model.predict, examples, batch_size=1, progress=False)
    four = predict_examples(model.predict, examples, batch_size=4, progress=False)
    assert one.shape == (len(examples), 2) and one.dtype == np.float32
    np.testing.assert_allclose(one, four, atol=1e-6)
    np.testing.assert_allclose(one[:, 0], oracle(data_dir), atol=2e-3)


def test_predict_examples_names_an_unreadable_file(tmp_path, onnx_model):
    from nothotdog.contract.dataset import Example
    from nothotdog.contract.runtime import load_onnx

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(EvaluationError, match=r"broken\.jpg"):
        predict_examples(load_onnx(onnx_model).predict, [Example(bad, 0, "x")], progress=False)


# --- nothotdog-eval on ONNX ------------------------------------------------------------------


def test_eval_onnx_end_to_end_without_tensorflow(tmp_path, data_dir, onnx_model):
    """The console entry point in a fresh interpreter: metrics right, TensorFlow never imported."""
    model = tmp_path / "tiny.onnx"
    model.write_bytes(onnx_model.read_bytes())
    script = textwrap.dedent(
        f"""
        import sys
        from nothotdog.training.evaluate import main
        rc = main([{str(model)!r}, {str(data_dir)!r}, "--batch-size", "3", "--no-progress"])
        heavy = sorted(m for m in ("tensorflow", "keras", "tf2onnx") if m in sys.modules)
        print("HEAVY", heavy)
        sys.exit(rc)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "HEAVY []" in run.stdout
    assert "overall" in run.stdout and "siteA" in run.stdout
    out = tmp_path / f"tiny-eval-{data_dir.parent.name}-{data_dir.name}"  # the default --out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["confusion_matrix"] == EXPECTED_CM
    assert metrics["threshold"] == 0.5  # from the model's metadata
    assert metrics["labels"] == list(LABELS)
    for name in REPORT_PNGS:
        assert is_png(out / name), name


def test_eval_threshold_option_overrides_the_models(tmp_path, data_dir, onnx_model, capsys):
    out = tmp_path / "t"
    rc = main([str(onnx_model), str(data_dir), "--out", str(out), "--threshold", "0.999",
               "--no-progress"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["threshold"] == 0.999
    assert metrics["confusion_matrix"] == [[0, 5], [0, 5]]
    assert "overall" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_model", "does not exist"),
        ("not_a_model", "neither"),
        ("missing_data", "data folder"),
        ("no_label_folders", "no folder for class 'hot_dog'"),
        ("bad_threshold", "--threshold"),
        ("broken_onnx", "cannot load"),
    ],
)
def test_eval_bad_input_fails_with_one_line(tmp_path, data_dir, onnx_model, capsys, case, message):
    model, data, extra = onnx_model, data_dir, []
    if case == "missing_model":
        model = tmp_path / "nope.onnx"
    elif case == "not_a_model":
        model = tmp_path / "model.txt"
        model.write_text("hello")
    elif case == "missing_data":
        data = tmp_path / "nowhere"
    elif case == "no_label_folders":
        data = tmp_path / "cats"
        (data / "cat").mkdir(parents=True)
        (data / "dog").mkdir()
    elif case == "bad_threshold":
        extra = ["--threshold", "1.5"]
    elif case == "broken_onnx":
        model = tmp_path / "broken.onnx"
        model.write_bytes(b"\x00garbage")
    rc = main([str(model), str(data), "--out", str(tmp_path / "out"), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert len(err.splitlines()) == 1 and err.startswith("nothotdog-eval: error:"), err
    assert message in err


def test_console_script_reports_a_missing_model(tmp_path):
    script = Path(sys.executable).with_name("nothotdog-eval")
    if not script.exists():
        pytest.skip("the package is not installed in this interpreter's environment")
    run = subprocess.run(
        [str(script), str(tmp_path / "absent.onnx"), str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"nothotdog-eval: error: model {tmp_path / 'absent.onnx'} does not exist"
    ]


# --- nothotdog-eval on Keras ------------------------------------------------------------------


def build_tiny_keras(path: Path, size: int) -> Path:
    """VGGPreprocess + mean colour + softmax: the same redness rule as the tiny ONNX model."""
    keras = pytest.importorskip("keras")
    from nothotdog.contract import IMAGENET_MEAN_BGR
    from nothotdog.training.model import VGGPreprocess
    from tests.tinymodel import SCALE

    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = VGGPreprocess()(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    # x is BGR minus the mean; logit(hot) - logit(not) must be (R - (G + B) / 2) / SCALE.
    kernel = np.zeros((3, 2), np.float32)
    kernel[:, 0] = np.array([-0.5, -0.5, 1.0]) / SCALE  # B, G, R
    b, g, r = IMAGENET_MEAN_BGR
    bias = np.array([(r - (g + b) / 2) / SCALE, 0.0], np.float32)
    dense.set_weights([kernel, bias])
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def test_eval_keras_run_folder_and_bare_file(tmp_path, data_dir, onnx_model, capsys):
    run = tmp_path / "run"
    build_tiny_keras(run / "model.keras", size=32)
    (run / "labels.json").write_text(
        json.dumps({"labels": list(LABELS), "positive_label": POSITIVE_LABEL})
    )
    (run / "metrics.json").write_text(json.dumps({"threshold": 0.3}))

    assert main([str(run), str(data_dir), "--no-progress"]) == 0
    out = run / f"eval-{data_dir.parent.name}-{data_dir.name}"  # the default --out
    keras_metrics = json.loads((out / "metrics.json").read_text())
    assert keras_metrics["threshold"] == 0.3  # from the run's metrics.json
    for name in REPORT_PNGS:
        assert is_png(out / name), name
    # Same rule, same pixels (solid colours survive any resize): same numbers as the oracle.
    p_hot = oracle(data_dir)
    y = [e.label for e in list_examples(data_dir, LABELS)]
    expected = compute_metrics(
        y, np.stack([p_hot, 1 - p_hot], 1), LABELS, POSITIVE_LABEL, 0.3, ["-"] * len(y)
    )
    assert keras_metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert keras_metrics["roc_auc"] == pytest.approx(expected["roc_auc"])
    assert keras_metrics["log_loss"] == pytest.approx(expected["log_loss"], abs=1e-3)

    # A bare .keras file: contract labels and threshold 0.5, with a note on stderr.
    bare = tmp_path / "elsewhere" / "tiny.keras"
    bare.parent.mkdir()
    bare.write_bytes((run / "model.keras").read_bytes())
    capsys.readouterr()
    assert main([str(bare), str(data_dir), "--out", str(tmp_path / "bare"), "--no-progress"]) == 0
    assert "labels.json" in capsys.readouterr().err
    bare_metrics = json.loads((tmp_path / "bare" / "metrics.json").read_text())
    assert bare_metrics["confusion_matrix"] == EXPECTED_CM


def test_eval_bars_fail_a_worse_model_and_stamp_records_the_figures(
    tmp_path, data_dir, onnx_model, capsys
):
    """make model's guard: below --min-accuracy or a source's bar exits 3; --stamp writes the
    measured figures into the file so /about reports what this very file scored."""
    from nothotdog.contract.runtime import load_onnx

    model = tmp_path / "tiny.onnx"
    model.write_bytes(onnx_model.read_bytes())
    base = [str(model), str(data_dir), "--no-progress", "--out", str(tmp_path / "e")]
    assert main([*base, "--min-accuracy", "0.8"]) == 0  # 8 of 10 right
    assert main([*base, "--min-accuracy", "0.81"]) == 3
    err = capsys.readouterr().err
    assert "accuracy 0.8000 < 0.81" in err
    # siteB scores 2/4: held to the bar only when it has enough images.
    assert main([*base, "--min-source-accuracy", "0.9", "--min-source-images", "4"]) == 3
    assert "source siteB" in capsys.readouterr().err
    assert main([*base, "--min-source-accuracy", "0.9", "--min-source-images", "5"]) == 0
    assert main([*base, "--stamp", "test"]) == 0
    spec = load_onnx(model).spec
    assert spec.test_metrics["accuracy"] == pytest.approx(0.8)
    assert spec.test_metrics["per_source"]["siteB"]["n"] == 4
    assert "ece" in spec.test_metrics
