"""``python -m bench.floor [--model PATH]``: this machine's floor, measured now.

Milliseconds per image say as much about the CPU (its cores, AVX-512, VNNI, AMX, whatever
else runs on it this minute) as about the model, so they cannot be compared between machines
or runs. What can: the model's time divided by the time this machine needs, in the same run,
for the bare arithmetic the model must do. That arithmetic is multiply-accumulates (MACs):
VGG16's conv base needs about 15.35 G of them per 224x224 image, and nearly all of a
convolution's time is one big matrix multiply (GEMM). So one large GEMM through onnxruntime,
with the bot's thread settings, gives this machine's GMAC/s: u8 activations x s8 constant
weights (``MatMulInteger``, the kernel an int8 convolution uses) for int8 models, float32
``MatMul`` for float ones. The floor is then GMAC per image / GMAC/s: about the fastest
this CPU and runtime can do the model's arithmetic, and "x the floor" (1.0: no time lost
outside the arithmetic) is a ratio that travels. It is a reference, not a proof: onnxruntime
runs int8 convolutions with its own conv kernels, which on some CPUs beat ``MatMulInteger``
by a little, so a ratio slightly under 1.0 can happen. The GEMMs are timed interleaved (each
round runs each once) after warm-up, and the median is kept; bench.inference adds them to
its own interleaved rounds.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import SHIPPED_MODEL, Stopwatch, describe_cpu, median, table, write_result

GEMM_SHAPE = (1024, 4096, 4096)  # M x K activations times K x N weights: 17.2 GMAC
PRECISIONS = ("int8", "float32")
WARMUP_CALLS = 2
DEFAULT_ROUNDS = 5
DEFAULT_BUDGET_S = 20.0
CONV_OPS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}  # op -> index of its weight input


@dataclass
class Gemm:
    """One GEMM in an onnxruntime session, its inputs ready, and the times it took."""

    precision: str
    shape: tuple[int, int, int]
    session: Any  # onnxruntime.InferenceSession
    feed: dict[str, np.ndarray]
    ms: list[float] = field(default_factory=list)

    @property
    def macs(self) -> int:
        m, k, n = self.shape
        return m * k * n

    def run(self) -> None:
        self.session.run(None, self.feed)

    def timed(self) -> float:
        start = time.perf_counter()
        self.run()
        self.ms.append((time.perf_counter() - start) * 1000)
        return self.ms[-1]

    @property
    def gmac_per_s(self) -> float:
        return self.macs / median(self.ms) / 1e6 if self.ms else float("nan")


def gemm_model(precision: str, shape: tuple[int, int, int], seed: int = 0) -> Any:
    """A one-node ONNX graph: ``x [M, K] @ w [K, N]`` with ``w`` a constant, as conv weights
    are (onnxruntime pre-packs constant weights, so this is the kernel convolutions get)."""
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = shape
    rng = np.random.default_rng(seed)
    if precision == "int8":
        weights = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["x", "w"], ["y"])
        x_type, y_type = TensorProto.UINT8, TensorProto.INT32
    elif precision == "float32":
        weights = rng.standard_normal((k, n), dtype=np.float32)
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        x_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    else:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    graph = helper.make_graph(
        [node], f"gemm_{precision}",
        [helper.make_tensor_value_info("x", x_type, [m, k])],
        [helper.make_tensor_value_info("y", y_type, [m, n])],
        initializer=[numpy_helper.from_array(weights, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def build_gemm(precision: str, shape: tuple[int, int, int] = GEMM_SHAPE,
               intra_op_threads: int = 0) -> Gemm:
    """The GEMM in a session made with the bot's own options (contract.runtime)."""
    import onnxruntime as ort

    from nothotdog.contract.runtime import PROVIDERS, session_options

    model = gemm_model(precision, shape)
    session = ort.InferenceSession(model.SerializeToString(), session_options(intra_op_threads),
                                   providers=PROVIDERS)
    m, k, _ = shape
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, size=(m, k), dtype=np.uint8) if precision == "int8"
         else rng.standard_normal((m, k), dtype=np.float32))
    return Gemm(precision, shape, session, {"x": x})


# One int8 3x3 convolution the size of VGG16's block3 (56x56, 256 -> 256 channels): 1.85 GMAC.
# On CPUs without VNNI, onnxruntime's QLinearConv kernel outruns MatMulInteger (measured on a
# 2-core AVX2 EPYC: the shipped model at 0.68x a MatMulInteger-only floor), so the int8 floor
# is the faster of the two: a floor the model beats is no floor.
CONV_SHAPE = (256, 56, 56)  # channels, height, width


def conv_model(shape: tuple[int, int, int] = CONV_SHAPE, seed: int = 0) -> Any:
    """A one-node QLinearConv graph (u8 activations, s8 constant per-channel weights)."""
    from onnx import TensorProto, helper, numpy_helper

    c, h, w = shape
    rng = np.random.default_rng(seed)
    consts = {
        "w": rng.integers(-127, 128, size=(c, c, 3, 3), dtype=np.int8),
        "x_scale": np.array(0.02, np.float32), "x_zp": np.array(0, np.uint8),
        "w_scale": np.full(c, 0.01, np.float32), "w_zp": np.zeros(c, np.int8),
        "y_scale": np.array(0.05, np.float32), "y_zp": np.array(0, np.uint8),
    }
    node = helper.make_node(
        "QLinearConv", ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"],
        ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "conv_int8",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, c, h, w])],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def build_conv(shape: tuple[int, int, int] = CONV_SHAPE, intra_op_threads: int = 0) -> Gemm:
    """The int8 convolution as a ``Gemm`` record (precision int8, MACs of the convolution)."""
    import onnxruntime as ort

    from nothotdog.contract.runtime import PROVIDERS, session_options

    c, h, w = shape
    session = ort.InferenceSession(conv_model(shape).SerializeToString(),
                                   session_options(intra_op_threads), providers=PROVIDERS)
    x = np.random.default_rng(1).integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    return Gemm("int8", (h * w, c * 9, c), session, {"x": x})  # its GEMM: M x K x N


def measure(gemms: list[Gemm], rounds: int = DEFAULT_ROUNDS,
            budget_s: float = DEFAULT_BUDGET_S, warmup: int = WARMUP_CALLS) -> int:
    """Warm up, then interleave (round r starts at GEMM r mod n); returns the rounds done."""
    for gemm in gemms:
        for _ in range(warmup):
            gemm.run()
    clock = Stopwatch()
    done = 0
    for r in range(rounds):
        if done and clock.seconds > budget_s:
            break
        for gemm in gemms[r % len(gemms):] + gemms[: r % len(gemms)]:
            gemm.timed()
        done += 1
    return done


@dataclass(frozen=True)
class ConvMacs:
    """Multiply-accumulates per image in a model's convolutions, split by their precision."""

    int8: int
    float32: int
    convs: int

    @property
    def total(self) -> int:
        return self.int8 + self.float32

    @property
    def precision(self) -> str:
        """Which floor applies: the one most of the arithmetic runs at."""
        return "int8" if self.int8 >= self.float32 else "float32"


def conv_macs(model: Any) -> ConvMacs:
    """Sum over convolutions of out_h * out_w * out_c * k_h * k_w * in_c / groups, per image,
    read from the graph (shapes by ONNX shape inference with batch 1). A Conv counts as int8
    when its weights come through a DequantizeLinear (QDQ: onnxruntime runs it as
    QLinearConv), or it is a ConvInteger or QLinearConv."""
    import onnx
    from onnx import shape_inference

    proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    proto = onnx.ModelProto.FromString(proto.SerializeToString())  # a copy to pin the batch
    for graph_input in proto.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    graph = shape_inference.infer_shapes(proto).graph
    shapes: dict[str, list[int]] = {i.name: list(i.dims) for i in graph.initializer}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        shapes[info.name] = [d.dim_value for d in info.type.tensor_type.shape.dim]
    producer = {out: node for node in graph.node for out in node.output}
    int8 = float32 = convs = 0
    for node in graph.node:
        if node.op_type not in CONV_OPS:
            continue
        weight = node.input[CONV_OPS[node.op_type]]
        source = producer.get(weight)
        w = shapes.get(weight) or (shapes.get(source.input[0]) if source else None)
        out = shapes.get(node.output[0])
        if not w or not out or len(out) != 4 or not all(out[1:]):
            raise ValueError(f"cannot tell the shapes of convolution {node.name!r}")
        macs = out[1] * out[2] * out[3] * int(np.prod(w[1:]))  # w: [out_c, in_c/groups, k...]
        quantized = node.op_type != "Conv" or (source is not None
                                               and source.op_type == "DequantizeLinear")
        int8, float32 = (int8 + macs, float32) if quantized else (int8, float32 + macs)
        convs += 1
    return ConvMacs(int8, float32, convs)


def fastest(probes: list) -> dict[str, float]:
    """Per precision, the best GMAC/s measured: that is the floor's rate. ``probes`` have a
    ``precision`` and a ``gmac_per_s`` (``Gemm`` here, bench.inference's floor rows)."""
    rate: dict[str, float] = {}
    for g in probes:
        rate[g.precision] = max(rate.get(g.precision, 0.0), g.gmac_per_s)
    return rate


def floor_ms(macs: int, gmac_per_s: float) -> float:
    """The fastest this machine could do ``macs`` multiply-accumulates, in milliseconds."""
    return macs / gmac_per_s / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL,
                        help="ONNX model whose floor to give (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=0,
                        help="onnxruntime intra-op threads, as the bot's ONNX_THREADS "
                             "(default %(default)s: all cores)")
    parser.add_argument("--shape", default="x".join(map(str, GEMM_SHAPE)), help="M x K x N")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S,
                        help="seconds for the timed rounds (default %(default)s)")
    args = parser.parse_args(argv)
    m, k, n = (int(v) for v in args.shape.lower().split("x"))
    gemms = [*(build_gemm(p, (m, k, n), args.threads) for p in PRECISIONS),
             build_conv(intra_op_threads=args.threads)]
    rounds = measure(gemms, args.rounds, args.budget)
    print(f"CPU: {describe_cpu()}")
    print(table(["GEMM (onnxruntime)", "M x K x N", "n", "median ms", "GMAC/s"],
                [(f"{g.precision} ({'u8 x s8' if g.precision == 'int8' else 'f32 x f32'})",
                  "x".join(map(str, g.shape)), len(g.ms), median(g.ms), g.gmac_per_s)
                 for g in gemms],
                title=f"Floor: {rounds} interleaved rounds after {WARMUP_CALLS} warm-up calls, "
                      f"intra-op threads {args.threads or 'all'}"))
    result: dict[str, Any] = {
        "threads": args.threads, "rounds": rounds, "warmup_calls": WARMUP_CALLS,
        "gemms": [{"precision": g.precision, "shape": list(g.shape), "macs": g.macs,
                   "median_ms": round(median(g.ms), 2), "gmac_per_s": round(g.gmac_per_s, 1),
                   "ms": [round(t, 2) for t in g.ms]} for g in gemms]}
    if args.model.is_file():
        macs = conv_macs(args.model)
        rate = fastest(gemms)[macs.precision]
        ms = floor_ms(macs.total, rate)
        print(f"\n{args.model.name}: {macs.convs} convolutions, {macs.total / 1e9:.2f} GMAC per "
              f"image ({macs.int8 / 1e9:.2f} int8, {macs.float32 / 1e9:.2f} float32); "
              f"{macs.precision} floor {ms:.1f} ms per image")
        result["model"] = {"path": str(args.model), "convs": macs.convs,
                           "gmac_per_image": round(macs.total / 1e9, 3),
                           "int8_gmac": round(macs.int8 / 1e9, 3),
                           "float32_gmac": round(macs.float32 / 1e9, 3),
                           "floor_precision": macs.precision, "floor_ms_per_image": round(ms, 2)}
    print(f"wrote {write_result('floor', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
