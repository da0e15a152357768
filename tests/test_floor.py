"""bench.floor and the CPU facts every benchmark reports: fast, tiny sizes, no timing asserts."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")  # the [train] extra, as the benchmarks need
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bench.common import CPU_FLAGS, cpu_flags, cpu_model, describe_cpu, machine  # noqa: E402
from bench.floor import (  # noqa: E402
    PRECISIONS,
    build_gemm,
    conv_macs,
    floor_ms,
    gemm_model,
    measure,
)

TINY = (8, 16, 4)  # M x K x N


@pytest.mark.parametrize("precision", PRECISIONS)
def test_gemm_builds_runs_and_gives_a_positive_rate(precision: str) -> None:
    gemm = build_gemm(precision, TINY, intra_op_threads=1)
    (y,) = gemm.session.run(None, gemm.feed)
    assert y.shape == (8, 4)
    assert y.dtype == (np.int32 if precision == "int8" else np.float32)
    assert gemm.macs == 8 * 16 * 4
    assert measure([gemm], rounds=3, budget_s=10.0, warmup=1) == 3
    assert len(gemm.ms) == 3
    assert gemm.gmac_per_s > 0


def test_int8_gemm_is_u8_times_s8_and_exact() -> None:
    weights = numpy_helper.to_array(gemm_model("int8", TINY).graph.initializer[0])
    gemm = build_gemm("int8", TINY, intra_op_threads=1)  # same seed: the same weights
    assert (gemm.feed["x"].dtype, weights.dtype) == (np.uint8, np.int8)
    # Activations below 128: without VNNI (plain AVX2) the u8 x s8 kernel adds pairs of
    # products in int16 and saturates at full range, which changes sums but not speed.
    x = gemm.feed["x"] // 2
    np.testing.assert_array_equal(gemm.session.run(None, {"x": x})[0],
                                  x.astype(np.int32) @ weights.astype(np.int32))


def conv_graph(precision: str, channels: int, out_channels: int, size: int, kernel: int,
               stride: int, groups: int) -> onnx.ModelProto:
    """x [batch, C, H, W] -> Conv (float, or QDQ int8 as onnxruntime's quantizer writes it)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((out_channels, channels // groups, kernel, kernel), np.float32)
    nodes, inits = [], []
    x, weight = "x", "w"
    if precision == "int8":
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                  numpy_helper.from_array(np.array(128, np.uint8), "zu"),
                  numpy_helper.from_array(np.array(0, np.int8), "zs"),
                  numpy_helper.from_array((w / 0.05).round().astype(np.int8), "w_q")]
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "zu"], ["x_q"]),
                  helper.make_node("DequantizeLinear", ["x_q", "s", "zu"], ["x_dq"]),
                  helper.make_node("DequantizeLinear", ["w_q", "s", "zs"], ["w_dq"])]
        x, weight = "x_dq", "w_dq"
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    nodes.append(helper.make_node("Conv", [x, weight], ["y"], kernel_shape=[kernel, kernel],
                                  strides=[stride, stride], pads=[1, 1, 1, 1], group=groups))
    graph = helper.make_graph(
        nodes, "tiny_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize(("stride", "groups"), [(1, 1), (2, 1), (1, 2)])
def test_conv_macs_match_the_hand_formula(precision: str, stride: int, groups: int) -> None:
    c, m, size, k = 4, 6, 10, 3
    macs = conv_macs(conv_graph(precision, c, m, size, k, stride, groups))
    out = (size + 2 - k) // stride + 1  # pads 1 each side
    expected = out * out * m * k * k * c // groups
    assert macs.total == expected
    assert macs.convs == 1
    assert (macs.int8, macs.float32) == ((expected, 0) if precision == "int8" else (0, expected))
    assert macs.precision == precision


def test_floor_ms_is_macs_over_rate() -> None:
    assert floor_ms(15_000_000_000, 300.0) == pytest.approx(50.0)


def test_cpu_flags_have_every_key_and_read_the_flags_line() -> None:
    assert set(cpu_flags()) == set(CPU_FLAGS)
    assert {"avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16", "amx_tile",
            "avx512_bf16"} <= set(CPU_FLAGS)
    text = ("processor\t: 0\nmodel name\t: Test CPU 9000\n"
            "flags\t\t: fpu avx2 avx512f avx512_vnni amx_tile amx_int8\n")
    flags = cpu_flags(text)
    assert {f for f, on in flags.items() if on} == {"avx2", "avx512f", "avx512_vnni",
                                                   "amx_tile", "amx_int8"}
    assert cpu_model(text) == "Test CPU 9000"
    assert not any(cpu_flags("").values())


def test_machine_names_the_cpu_and_its_flags() -> None:
    info = machine()
    assert set(info["cpu_flags"]) == set(CPU_FLAGS)
    assert info["cpu"] in describe_cpu(info)


def test_int8_conv_probe_runs_and_counts_its_macs() -> None:
    from bench.floor import build_conv, fastest

    conv = build_conv((8, 6, 6), intra_op_threads=1)
    (y,) = conv.session.run(None, conv.feed)
    assert y.shape == (1, 8, 6, 6) and y.dtype == np.uint8
    assert conv.macs == 6 * 6 * 8 * 8 * 9
    assert measure([conv], rounds=2, budget_s=10.0, warmup=1) == 2
    gemm = build_gemm("int8", TINY, intra_op_threads=1)
    measure([gemm], rounds=2, budget_s=10.0, warmup=1)
    assert fastest([gemm, conv])["int8"] == max(gemm.gmac_per_s, conv.gmac_per_s)
