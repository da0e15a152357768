"""export/: a tiny Keras model with the real preprocessing layer, exported end to end.

The model's verdict follows the pixels (redder than blue means hotdog), so parity, the int8
comparison and its accuracy gate are measured on images whose right answer is known.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import keras
import onnx
import onnxruntime as ort

from nothotdog.contract import (
    HEATMAP_NAME,
    INPUT_NAME,
    INPUT_SIZE,
    LABELS,
    OUTPUT_NAME,
    MetaKey,
    ModelSpec,
)
from nothotdog.contract.dataset import Example
from nothotdog.contract.runtime import load_onnx
from nothotdog.export.__main__ import main
from nothotdog.export.checks import ParityError, check_parity, generated_images, keras_features
from nothotdog.export.convert import load_float32, to_onnx
from nothotdog.export.heatmap import HeatmapError, add_heatmap
from nothotdog.export.metadata import REQUIRED_KEYS, read_metadata, weights_sha256
from nothotdog.training.int8 import decode_examples, side_branch, stratified_sample
from nothotdog.training.resume import load_top_from_onnx
from tests.kerasmodel import vgg_shaped

THRESHOLD = 0.42
VAL_METRICS = {"accuracy": 0.97, "precision": 0.96, "recall": 0.95, "f1": 0.955,
               "roc_auc": 0.99, "log_loss": 0.08}  # fmt: skip
DATA_SUMMARY = {"train": {"n": 80, "per_class": {"hot_dog": 40, "not_hot_dog": 40}}}


def build_redness_model(seed: int = 0) -> keras.Model:
    """A ``vgg_shaped`` model whose verdict is redness.

    Hand-set weights: conv1 filters 0..3 read +R, -R, +B, -B (centre tap; ReLU halves add back
    to the mean), conv2 passes them through, so the logit is proportional to mean(R) - mean(B)
    after mean subtraction. Filters 4..7 are seeded noise with small weight in the Dense layer,
    so quantization has some real work to do.
    """
    rng = np.random.default_rng(seed)
    model = vgg_shaped(8, 2, "redness")

    k1 = rng.normal(0, 0.02, (3, 3, 3, 8)).astype(np.float32)
    k1[:, :, :, :4] = 0
    # After VGGPreprocess the channels are B, G, R (mean removed).
    for f, (channel, sign) in enumerate([(2, 1), (2, -1), (0, 1), (0, -1)]):
        k1[1, 1, channel, f] = sign / 100.0
    k2 = rng.normal(0, 0.02, (3, 3, 8, 8)).astype(np.float32)
    k2[:, :, :4, :] = 0
    k2[:, :, :, :4] = 0
    for f in range(4):
        k2[1, 1, f, f] = 1.0
    dense = np.zeros((8, 2), np.float32)
    dense[:4, 0] = [4.0, -4.0, -4.0, 4.0]  # logit(hot) = 4 * (R' - B') / 100
    dense[4:, :] = rng.normal(0, 0.1, (4, 2))
    model.get_layer("block1_conv1").set_weights([k1, np.zeros(8, np.float32)])
    model.get_layer("block2_conv1").set_weights([k2, np.zeros(8, np.float32)])
    model.get_layer(OUTPUT_NAME).set_weights([dense, np.array([0.0, 0.2], np.float32)])
    return model


def make_photos(root: Path, per_class: int, seed: int) -> Path:
    """JPEG photos in labelled folders, two source tags; hotdogs are redder than blue by a
    margin, the rest are not, with noise and some close calls near the model's boundary."""
    rng = np.random.default_rng(seed)
    for label in LABELS:
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            margin = rng.uniform(35, 140) if label == "hot_dog" else rng.uniform(-140, 5)
            base = rng.uniform(60, 190)
            colour = np.array([base + margin / 2, rng.uniform(30, 220), base - margin / 2])
            pixels = colour + rng.normal(0, 25, (64, 80, 3))
            photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            photo.save(root / label / f"{'ab'[i % 2]}src__{i:03d}.jpg", quality=90)
    return root


def make_run(root: Path, model: keras.Model) -> Path:
    """A run folder as training writes it."""
    root.mkdir(parents=True)
    model.save(root / "model.keras")
    (root / "labels.json").write_text(json.dumps({"labels": list(LABELS),
                                                  "positive_label": "hot_dog"}))  # fmt: skip
    (root / "metrics.json").write_text(json.dumps({
        "threshold": THRESHOLD, "threshold_rule": "max balanced accuracy on val",
        "val": VAL_METRICS}))  # fmt: skip
    (root / "config.json").write_text(json.dumps({
        "weights_source": "test: hand-set redness filters", "data_summary": DATA_SUMMARY,
        "versions": {"keras": keras.__version__}}))  # fmt: skip
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return build_redness_model()


@pytest.fixture(scope="module")
def run_dir(workdir: Path, model: keras.Model) -> Path:
    return make_run(workdir / "run", model)


@pytest.fixture(scope="module")
def photos(workdir: Path) -> dict[str, Path]:
    return {
        "train": make_photos(workdir / "data" / "train", 40, seed=1),
        "val": make_photos(workdir / "data" / "val", 30, seed=2),
    }


@pytest.fixture(scope="module")
def float32_export(workdir: Path, run_dir: Path, photos) -> Path:
    out = workdir / "models" / "plain.onnx"
    assert main([str(run_dir), "--out", str(out), "--check", str(photos["val"])]) == 0
    return out


@pytest.fixture(scope="module")
def int8_export(workdir: Path, run_dir: Path, photos) -> Path:
    out = workdir / "models" / "small.onnx"
    args = [str(run_dir), "--out", str(out), "--quantize", "int8",
            "--calibration", str(photos["train"]), "--calibration-images", "48",
            "--check", str(photos["val"])]  # fmt: skip
    assert main(args) == 0
    return out


def summary_of(out: Path) -> dict:
    return json.loads(out.with_name(f"{out.stem}.export.json").read_text())


def test_float32_export_matches_keras_on_the_check_photos(float32_export: Path):
    summary = summary_of(float32_export)
    assert summary["status"] == "ok"
    parity = summary["parity"]
    assert parity["images"] == 60 and parity["source"].endswith("val")
    assert parity["max_abs_diff"] <= 1e-4
    assert parity["label_mismatches"] == 0
    assert summary["files"]["float32"]["path"] == str(float32_export)


def test_metadata_carries_the_contract_and_the_run(float32_export: Path, model: keras.Model):
    meta = read_metadata(float32_export)
    assert set(REQUIRED_KEYS) <= set(meta)
    assert json.loads(meta[MetaKey.LABELS]) == list(LABELS)
    assert meta[MetaKey.POSITIVE_LABEL] == "hot_dog"
    assert float(meta[MetaKey.THRESHOLD]) == THRESHOLD
    assert meta[MetaKey.THRESHOLD_RULE] == "max balanced accuracy on val"
    assert meta[MetaKey.INPUT_SIZE] == str(INPUT_SIZE)
    assert meta[MetaKey.RESIZE] == "bilinear"
    assert json.loads(meta[MetaKey.METRICS]) == VAL_METRICS
    assert json.loads(meta[MetaKey.DATA_SUMMARY]) == DATA_SUMMARY
    assert meta[MetaKey.WEIGHTS_SOURCE] == "test: hand-set redness filters"
    assert meta[MetaKey.WEIGHTS_SHA256] == weights_sha256(model.get_weights())
    assert meta[MetaKey.MODEL_VERSION] == f"run-{meta[MetaKey.WEIGHTS_SHA256][:12]}"
    assert meta[MetaKey.MODEL_NAME] == "plain"
    assert meta[MetaKey.CREATED].endswith("+00:00")
    assert meta[MetaKey.QUANTIZATION] == "none (float32)"

    spec = load_onnx(float32_export).spec  # what the bot reads back
    assert spec.threshold == THRESHOLD and spec.labels == LABELS
    assert spec.metrics == VAL_METRICS


def test_graph_takes_uint8_nhwc_with_a_dynamic_batch(float32_export: Path):
    proto = onnx.load(str(float32_export))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    onnx.checker.check_model(proto, full_check=True)
    loaded = load_onnx(float32_export, runtime="onnxruntime")
    (inp,) = loaded.engine.session.get_inputs()
    assert inp.type == "tensor(uint8)" and inp.shape == ["batch", INPUT_SIZE, INPUT_SIZE, 3]
    assert loaded.engine.session.get_providers() == ["CPUExecutionProvider"]

    images = generated_images(3, seed=5)
    one = loaded.predict(images[:1])
    three = loaded.predict(images)
    assert one.shape == (1, 2) and three.shape == (3, 2) and three.dtype == np.float32
    np.testing.assert_allclose(three.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(three[:1], one, atol=1e-6)
    with pytest.raises(Exception, match=r"(?i)type"):  # float pixels break the contract
        loaded.engine.session.run(None, {INPUT_NAME: images.astype(np.float32)})


def test_the_graph_does_the_preprocessing(float32_export: Path, model: keras.Model):
    """Raw pixels in, the same probabilities as Keras out: nothing left for the client."""
    red = np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    red[..., 0] = 220
    blue = red[..., ::-1].copy()
    probs = load_onnx(float32_export).predict(np.concatenate([red, blue]))
    assert probs[0, 0] > 0.95 and probs[1, 1] > 0.95  # red: hotdog, blue: not


def test_parity_check_fails_loudly_on_a_different_model(model: keras.Model):
    other = build_redness_model(seed=1)  # same architecture, different noise filters
    session = ort.InferenceSession(to_onnx(other).SerializeToString(),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    images = generated_images(8, seed=3)
    with pytest.raises(ParityError, match="does not match Keras"):
        check_parity(model, session, images, ModelSpec(), "generated")


def test_int8_model_ships_with_metadata_and_its_comparison(int8_export: Path):
    summary = summary_of(int8_export)
    assert summary["status"] == "ok"
    float32 = int8_export.with_name("small.float32.onnx")
    assert float32.is_file() and int8_export.is_file()

    comparison = summary["comparison"]
    assert comparison["images"] == 60 and comparison["passed"]
    assert comparison["float32"]["accuracy"] >= 0.9
    assert comparison["drop_points"] <= 0.5
    assert 0.9 <= comparison["agreement"] <= 1.0
    for name in ("float32", "int8"):
        assert comparison[name]["ms_per_image"] > 0 and comparison[name]["size_bytes"] > 0
    assert summary["quantization"]["calibration_images"] == 48

    meta = read_metadata(int8_export)
    assert set(REQUIRED_KEYS) <= set(meta)
    assert meta[MetaKey.QUANTIZATION].startswith("int8 static QDQ")
    assert meta[MetaKey.WEIGHTS_SHA256] == read_metadata(float32)[MetaKey.WEIGHTS_SHA256]
    assert load_onnx(int8_export).spec.threshold == THRESHOLD

    proto = onnx.load(str(int8_export))
    ops = Counter(node.op_type for node in proto.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert any(len(t.dims) == 4 for t in int8_weights)  # per-channel conv kernels
    # The default keeps the head float (no QDQ after the global pooling, float dense weights)
    # and quantizes every convolution, the first one included (preprocessing folded into it).
    nodes = list(proto.graph.node)
    floats = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    pool = next(i for i, node in enumerate(nodes) if node.op_type == "GlobalAveragePool")
    assert not [n.op_type for n in nodes[pool:] if n.op_type.endswith("QuantizeLinear")]
    dense = next(n for n in nodes[pool:] if n.op_type in ("MatMul", "Gemm"))
    assert dense.input[1] in floats
    first, second = [n for n in nodes if n.op_type == "Conv"]
    assert first.input[1] not in floats and second.input[1] not in floats
    assert {o.domain for o in proto.opset_import} <= {"", "ai.onnx", "com.microsoft"}


def test_int8_gate_refuses_a_model_it_cannot_accept(workdir: Path, run_dir: Path, photos):
    """A negative allowance demands int8 beat float32 by a point: it cannot, so no int8."""
    out = workdir / "models" / "refused.onnx"
    args = [str(run_dir), "--out", str(out), "--quantize", "int8", "--calibration",
            str(photos["train"]), "--calibration-images", "16", "--check", str(photos["val"]),
            "--max-drop", "-1", "--parity-images", "8"]  # fmt: skip
    assert main(args) == 1
    assert not out.exists()
    summary = summary_of(out)
    assert summary["status"] == "failed" and "AccuracyGateError" in summary["error"]
    assert summary["comparison"]["passed"] is False
    assert not list(out.parent.glob(".refused-*"))  # no staging left behind


def test_mixed_precision_model_is_exported_as_float32(workdir: Path):
    """A bare .keras saved under mixed_bfloat16: rebuilt float32, contract defaults used."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build_redness_model()
        path = workdir / "mixed.keras"
        mixed.save(path)
    finally:
        keras.config.set_dtype_policy(previous)
    loaded = load_float32(path)
    assert loaded.trained_policy == "mixed_bfloat16"
    assert all(w.dtype == "float32" for w in loaded.model.weights)
    assert loaded.model.get_layer("block1_conv1").compute_dtype == "float32"

    out = workdir / "models" / "mixed.onnx"
    assert main([str(path), "--out", str(out)]) == 0
    summary = summary_of(out)
    assert summary["parity"]["source"] == "generated" and summary["parity"]["max_abs_diff"] <= 1e-4
    assert "trained_precision_drift" in summary
    spec = load_onnx(out).spec
    assert spec.threshold == 0.5 and spec.labels == LABELS  # contract defaults
    assert read_metadata(out)[MetaKey.WEIGHTS_SOURCE] == "unknown"


def test_stratified_sample_covers_every_class_and_source():
    examples = [Example(Path(f"{label}/{src}__{i}.jpg"), label, src)
                for label, src, count in [(0, "a", 60), (0, "b", 20), (1, "a", 10), (1, "c", 110)]
                for i in range(count)]  # fmt: skip
    sample = stratified_sample(examples, 40, seed=3)
    assert len(sample) == 40
    groups = Counter((e.label, e.source) for e in sample)
    assert groups == {(0, "a"): 12, (0, "b"): 4, (1, "a"): 2, (1, "c"): 22}
    assert sample == stratified_sample(examples, 40, seed=3)
    assert sample != stratified_sample(examples, 40, seed=4)
    assert stratified_sample(examples, 0) == examples


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--out", "m.onnx", "--quantize", "int8", "--check", "val"],  # no calibration
        ["run", "--out", "m.onnx", "--quantize", "int8", "--calibration", "train"],  # no check
        ["run", "--out", "model.pb"],
        ["run", "--out", "m.onnx", "--opset", "13"],
        ["run", "--out", "m.onnx", "--exclude", "head+softmax"],
    ],
)
def test_cli_refuses_incomplete_requests(args: list[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2


def test_excluded_nodes_are_found_by_position(float32_export: Path):
    from nothotdog.training.int8 import QuantizationError, excluded_nodes

    proto = onnx.load(str(float32_export))
    ops = {node.name: node.op_type for node in proto.graph.node}
    branch = side_branch(proto)  # kept float whatever the groups
    assert [ops[name] for name in branch] == ["Mul", "ReduceSum", "Add", "Identity"]  # features
    assert excluded_nodes(proto, "none") == branch

    def group(which: str) -> list[str]:
        return [ops[name] for name in excluded_nodes(proto, which) if name not in branch]

    head = group("head")
    assert head[0] == "GlobalAveragePool" and head[-1] == "Softmax" and "Conv" not in head
    before = group("preprocess")  # folded (export.convert): the image padded with the mean colour
    assert before[0] == "Transpose" and "Pad" in before and "Conv" not in before
    assert "Sub" not in before and "ReverseSequence" not in before
    assert group("first_conv") == ["Conv", "Relu"]
    both = excluded_nodes(proto, "head+preprocess")
    assert len(both) == len(head) + len(before) + len(branch)
    with pytest.raises(QuantizationError):
        excluded_nodes(proto, "everything")


def test_a_check_folder_missing_a_class_fails_the_export(workdir: Path, run_dir: Path):
    check = workdir / "one-class"
    (check / "hot_dog").mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 30, 30)).save(check / "hot_dog" / "x__0.png")
    out = workdir / "models" / "nocheck.onnx"
    assert main([str(run_dir), "--out", str(out), "--check", str(check)]) == 1
    assert not out.exists()
    assert "DatasetError" in summary_of(out)["error"]


def test_calibration_photos_that_cannot_be_decoded_fail_the_export(
    workdir: Path, run_dir: Path, photos
):
    broken = workdir / "broken"
    for label in LABELS:
        (broken / label).mkdir(parents=True)
        (broken / label / "x__0.jpg").write_bytes(b"not a jpeg")
    out = workdir / "models" / "broken.onnx"
    args = [str(run_dir), "--out", str(out), "--quantize", "int8", "--calibration", str(broken),
            "--check", str(photos["val"]), "--parity-images", "8"]  # fmt: skip
    assert main(args) == 1
    assert not out.exists()
    assert "no calibration image could be decoded" in summary_of(out)["error"]


def test_photos_that_cannot_be_read_or_decoded_are_skipped(tmp_path: Path):
    good, broken, gone = tmp_path / "a__0.png", tmp_path / "a__1.jpg", tmp_path / "a__2.jpg"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(good)
    broken.write_bytes(b"not a jpeg")
    images, labels, skipped = decode_examples([Example(p, 0, "a") for p in (good, broken, gone)])
    assert images.shape == (1, INPUT_SIZE, INPUT_SIZE, 3) and labels.tolist() == [0]
    assert skipped == [broken, gone]


def test_folded_first_convolution_matches_the_preprocessing_graph(model: keras.Model):
    import copy

    from nothotdog.export.convert import fold_preprocessing

    proto = to_onnx(model)
    folded = copy.deepcopy(proto)
    fold_preprocessing(folded)
    onnx.checker.check_model(folded, full_check=True)
    assert [n.op_type for n in folded.graph.node].count("ReverseSequence") == 0
    images = generated_images(16)
    run = lambda p: ort.InferenceSession(p.SerializeToString()).run(None, {INPUT_NAME: images})[0]  # noqa: E731
    np.testing.assert_allclose(run(folded), run(proto), atol=1e-5)


def test_int8_convolutions_read_the_image_with_nothing_between_them(int8_export: Path):
    from nothotdog.export.pipeline import optimized_ops, stack_report

    graph = summary_of(int8_export)["quantization"]["onnxruntime_graph"]
    assert graph["inside_stack"] == []
    ops = optimized_ops(int8_export)
    assert stack_report(ops)["inside_stack"] == []
    first_conv = next(i for i, op in enumerate(ops) if op == "QLinearConv")
    assert "Cast" not in ops[:first_conv]  # the uint8 image goes straight into int8


# --- the heatmap output ------------------------------------------------------------------------


def cam_by_hand(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The class activation map from the Keras weights, in numpy: the dense layer's
    hot-minus-not weights at every position of the map the global pooling averages."""
    features = keras.Model(model.input, model.get_layer("block2_conv1").output)
    fmap = np.asarray(features.predict_on_batch(images), np.float64)  # [n, h, w, c]
    weights, bias = (np.asarray(w, np.float64) for w in model.get_layer(OUTPUT_NAME).weights)
    return fmap @ (weights[:, 0] - weights[:, 1]) + (bias[0] - bias[1])


def test_heatmap_is_the_class_activation_map(float32_export: Path, model: keras.Model):
    images = generated_images(6, seed=7)
    loaded = load_onnx(float32_export)
    assert loaded.has_heatmap
    probs, heatmaps = loaded.explain(images)
    expected = cam_by_hand(model, images)
    assert heatmaps.shape == expected.shape == (6, 28, 28)
    np.testing.assert_allclose(heatmaps, expected, rtol=1e-4, atol=1e-4)
    # Exact: its mean over positions is the verdict's logit.
    logit = np.log(probs[:, 0].astype(np.float64) / probs[:, 1])
    np.testing.assert_allclose(heatmaps.mean(axis=(1, 2)), logit, atol=1e-4)
    (out,) = [o for o in loaded.engine.outputs if o.name == HEATMAP_NAME]
    assert out.shape[1:] == (28, 28)
    meta = json.loads(read_metadata(float32_export)[MetaKey.HEATMAP])
    assert meta["output"] == HEATMAP_NAME and meta["shape"] == ["batch", 28, 28]
    assert meta["label"] == "hot_dog"


def test_adding_the_heatmap_leaves_probabilities_bit_identical(model: keras.Model):
    plain = to_onnx(model)
    with_heatmap = onnx.ModelProto()
    with_heatmap.CopyFrom(plain)
    spec = add_heatmap(with_heatmap, ModelSpec())
    assert MetaKey.HEATMAP in spec.extra
    images = generated_images(8, seed=11)
    cpu = ["CPUExecutionProvider"]
    before = ort.InferenceSession(plain.SerializeToString(), providers=cpu)
    after = ort.InferenceSession(with_heatmap.SerializeToString(), providers=cpu)
    feed = {INPUT_NAME: images}
    (reference,) = before.run(None, feed)
    (alone,), (both, _) = after.run([OUTPUT_NAME], feed), after.run(None, feed)
    assert np.array_equal(reference, alone) and np.array_equal(reference, both)
    with pytest.raises(HeatmapError, match="already"):
        add_heatmap(with_heatmap, ModelSpec())


def test_int8_keeps_the_heatmap_float_and_close_to_float32(int8_export: Path):
    float32 = load_onnx(int8_export.with_name("small.float32.onnx"))
    int8 = load_onnx(int8_export)
    assert int8.has_heatmap and MetaKey.HEATMAP in int8.spec.extra
    proto = onnx.load(str(int8_export))
    branch = {name for name in side_branch(proto) if name.startswith("heatmap/")}
    assert len(branch) == 3
    producers = {out: n for n in proto.graph.node for out in n.output}
    mul = next(n for n in proto.graph.node if n.name in branch and n.op_type == "Mul")
    floats = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    assert mul.input[1] in floats  # its weights were not quantized
    assert not [n for n in proto.graph.node if n.name in branch and "Quantize" in n.op_type]
    assert producers[mul.input[0]].op_type == "DequantizeLinear"  # reads the int8 features
    images = generated_images(8, seed=13)
    (_, heat32), (probs, heat8) = float32.explain(images), int8.explain(images)
    # Still exact on the int8 file (its head is float): the mean is int8's own logit.
    logit = np.log(probs[:, 0].astype(np.float64) / probs[:, 1])
    np.testing.assert_allclose(heat8.mean(axis=(1, 2)), logit, atol=1e-4)
    # And it points where float32 points, wherever there is a pattern to point at.
    for a, b in zip(heat32, heat8, strict=True):
        if np.ptp(a) > 1.0:
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95



@pytest.mark.parametrize("which", ["float32", "int8"])
def test_training_continues_from_an_exported_file(
    which: str, float32_export: Path, int8_export: Path, model: keras.Model
) -> None:
    """``--init-from FILE.onnx``: the layers above the first convolution and the head come back
    from the file (int8 weights dequantized), so a shipped model can be trained further."""
    path = float32_export if which == "float32" else int8_export
    fresh = vgg_shaped(8, 2, "fresh")
    fresh.set_weights(model.get_weights())
    fresh.get_layer("block2_conv1").set_weights(
        [np.zeros_like(w) for w in fresh.get_layer("block2_conv1").get_weights()])
    fresh.get_layer(OUTPUT_NAME).set_weights(
        [np.zeros_like(w) for w in fresh.get_layer(OUTPUT_NAME).get_weights()])
    load_top_from_onnx(fresh, path, ["block2_conv1"])
    for name in ("block2_conv1", OUTPUT_NAME):
        (kernel, bias), (want_k, want_b) = (m.get_layer(name).get_weights() for m in (fresh, model))
        # int8: per output channel, within half a step of the largest weight over 127.
        int8 = which == "int8" and name != OUTPUT_NAME
        step = np.abs(want_k).max(axis=tuple(range(want_k.ndim - 1))) / 127 if int8 else 0
        assert np.all(np.abs(kernel - want_k) <= step / 2 + 1e-6)
        np.testing.assert_allclose(bias, want_b, atol=1e-3 if which == "int8" else 1e-6)
    images = generated_images(4, seed=9)
    np.testing.assert_allclose(fresh.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=0.02 if which == "int8" else 1e-5)  # fmt: skip


# --- the features output ------------------------------------------------------------------------


def test_features_are_the_keras_pooling_and_int8_keeps_their_direction(
    float32_export: Path, int8_export: Path, model: keras.Model
) -> None:
    images = generated_images(6, seed=7)
    probs, features = load_onnx(float32_export).features(images)
    np.testing.assert_allclose(features, keras_features(model, images), rtol=1e-4, atol=1e-5)
    assert np.array_equal(probs, load_onnx(float32_export).predict(images))
    assert summary_of(float32_export)["parity"]["features"]["max_relative_diff"] <= 1e-4
    int8 = load_onnx(int8_export)
    assert int8.has_features and MetaKey.FEATURES in int8.spec.extra
    cosine = summary_of(int8_export)["comparison"]["features_cosine"]
    assert 0.9 < cosine["min"] <= cosine["mean"] <= 1.0 + 1e-9
