"""The ``features`` output: added to any exported file by a graph edit, loaded on both
runtimes, and the shipped file carries it with its verdicts unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from nothotdog.bot.settings import shipped_model_path
from nothotdog.contract import FEATURES_NAME, INPUT_NAME, INPUT_SIZE, OUTPUT_NAME, MetaKey
from nothotdog.contract.runtime import ModelLoadError, load_onnx, openvino_installed
from nothotdog.export.__main__ import main
from nothotdog.export.checks import generated_images
from nothotdog.export.features import FeaturesError, add_features_to_file
from tests.tinymodel import TINY_SPEC, build_tiny_model

RUNTIMES = ["onnxruntime", *(["openvino"] if openvino_installed() else [])]


def build_pooled_head(path: Path) -> Path:
    """The shape of the shipped int8 file's head, without its trunk: the image's channels
    (NCHW) -> GlobalAveragePool -> Squeeze -> Gemm -> Softmax."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("GlobalAveragePool", ["nchw"], ["pooled"], name="head_pool"),
        helper.make_node("Squeeze", ["pooled", "axes"], ["squeezed"]),
        helper.make_node("Gemm", ["squeezed", "weights", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [OUTPUT_NAME], axis=1),
    ]
    inits = [
        helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]),
        helper.make_tensor("weights", TensorProto.FLOAT, [3, 2],
                           (rng.normal(0, 0.05, 6)).tolist()),
        helper.make_tensor("bias", TensorProto.FLOAT, [2], [0.1, -0.1]),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "pooled_head",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8,
                                       ["batch", INPUT_SIZE, INPUT_SIZE, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 2])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, TINY_SPEC.to_metadata())
    onnx.save(model, str(path))
    return path


def test_add_features_in_place_keeps_every_verdict(tmp_path: Path) -> None:
    path = build_pooled_head(tmp_path / "head.onnx")
    images = generated_images(6, seed=2)
    before = {rt: load_onnx(path, 1, rt).predict(images) for rt in RUNTIMES}
    assert not load_onnx(path, 1).has_features
    assert main(["--add-features", str(path)]) == 0
    for runtime in RUNTIMES:
        model = load_onnx(path, 1, runtime)
        assert model.has_features
        probs, features = model.features(images)
        assert np.array_equal(probs, before[runtime])
        expected = images.reshape(len(images), -1, 3).mean(axis=1)  # the pooled channels
        np.testing.assert_allclose(features, expected, rtol=1e-5)
    meta = json.loads(load_onnx(path, 1).spec.extra[MetaKey.FEATURES])
    assert meta["output"] == FEATURES_NAME and meta["shape"] == ["batch", 3]
    assert main(["--add-features", str(path)]) == 1  # once only: it says so, writes nothing


def test_add_features_to_another_file_and_refusals(tmp_path: Path, capsys) -> None:
    source = build_pooled_head(tmp_path / "head.onnx")
    original = source.read_bytes()
    out = add_features_to_file(source, tmp_path / "new" / "with.onnx")
    assert source.read_bytes() == original and load_onnx(out, 1).has_features
    no_head = build_tiny_model(tmp_path / "tiny.onnx", features=False)  # no pooling, no softmax
    with pytest.raises(FeaturesError, match="Softmax"):
        add_features_to_file(no_head)
    assert main(["--add-features", str(tmp_path / "missing.onnx")]) == 1
    assert "FAILED" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--add-features", str(source)])


def test_loader_accepts_features_and_refuses_unknown_outputs(tmp_path: Path) -> None:
    both = load_onnx(build_tiny_model(tmp_path / "both.onnx", heatmap=True), 1)
    assert both.has_features and both.has_heatmap
    older = load_onnx(build_tiny_model(tmp_path / "older.onnx", features=False), 1)
    assert not older.has_features
    with pytest.raises(ModelLoadError, match="no 'features' output"):
        older.features(generated_images(1))
    path = build_pooled_head(tmp_path / "odd.onnx")
    proto = onnx.load(str(path))
    proto.graph.output.append(helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None))
    onnx.save(proto, str(path))
    with pytest.raises(ModelLoadError, match="'pooled'"):
        load_onnx(path, 1, "onnxruntime")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_shipped_file_has_features(runtime: str) -> None:
    model = load_onnx(shipped_model_path(), 1, runtime)
    assert model.has_features and MetaKey.FEATURES in model.spec.extra
    probs, features = model.features(generated_images(3, seed=9))
    assert features.shape == (3, 512) and (features >= 0).all()
    assert np.array_equal(probs, model.predict(generated_images(3, seed=9)))


@pytest.mark.skipif(len(RUNTIMES) < 2, reason="OpenVINO is not installed")
def test_both_runtimes_give_the_same_features() -> None:
    """What a chat taught on one replica's runtime must mean the same on another's."""
    images = generated_images(8, seed=4)
    ort, ov = (load_onnx(shipped_model_path(), 1, rt).features(images)[1] for rt in RUNTIMES)
    cosine = (ort * ov).sum(axis=1) / np.linalg.norm(ort, axis=1) / np.linalg.norm(ov, axis=1)
    assert cosine.min() > 0.999
