"""``python -m bench.inference [--run runs/X]``: Keras ``predict`` vs onnxruntime float32 vs int8.

One set of weights in three forms (see bench.models for where the weights come from), batch 1
and batch 8, timed in one process, interleaved: every round runs each configuration once, in
a rotating order, so a noisy machine (another job, thermal changes) slows them all alike and
the ratios stay fair even when the absolute numbers move. The baseline is Keras
``model.predict`` at batch 1, the way the talk runs it; ``model(x)`` (Keras without predict's
per-call set-up) is shown for information. onnxruntime runs as the bot runs it: the session
comes from contract.runtime.load_onnx with the default thread count (all cores).

The floor (bench.floor): an int8 (u8 x s8) and a float32 GEMM through onnxruntime, with the
bot's thread settings, take their turns in the same rounds; their median gives this machine's
GMAC/s right now, and each model row shows "x the floor": its median time over the time its
convolutions' multiply-accumulates (counted from its graph) would take at that rate, int8 rate
for int8 models, float32 for float ones. 1.0 would be perfect; unlike milliseconds, the ratio
can be compared across machines.

Also: the model files' sizes, and the peak RSS of a fresh process that only loads each model
and classifies one photo (bench.rss_probe), which for ONNX is the bot's own code path and must
import no TensorFlow. The int8 model is kept in bench/results/models/ for bench.load and
bench.startup. Also timed: the shipped models/nothotdog.onnx, when it exists.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    SHIPPED_MODEL,
    Stopwatch,
    describe_cpu,
    median,
    percentile,
    run_module,
    table,
    write_result,
)
from bench.floor import fastest, floor_ms

WARMUP_CALLS = 2
DEFAULT_ROUNDS = 10
DEFAULT_BUDGET_S = 90.0  # the timed rounds stop after this even if rounds remain
BATCH_SIZES = (1, 8)
B1_CALLS_PER_ROUND = 2  # batch 1 is cheap: two samples a round for steadier percentiles
ONNX_THREADS = 0  # the bot's default ONNX_THREADS (all cores), for the models and the GEMMs


@dataclass
class Config:
    """One way of running the model at one batch size, and the times it took per image."""

    name: str
    engine: str  # keras-predict, keras-call, onnxruntime
    precision: str
    batch: int
    run: Callable[[np.ndarray], Any]
    calls_per_round: int = 1
    ms_per_image: list[float] = field(default_factory=list)
    baseline: bool = False
    macs: int = 0  # per image: the model's convolutions; for a floor GEMM, the GEMM's
    floor: str = "int8"  # which floor the model is held to; for a GEMM, the floor it measures
    is_floor: bool = False  # a floor GEMM, not a model

    @property
    def gmac_per_s(self) -> float:
        return self.macs / median(self.ms_per_image) / 1e6


def build_configs(models: Any) -> tuple[list[Config], dict[str, Path]]:
    """Every model at every batch size, then the two floor GEMMs (bench.floor)."""
    from bench.floor import CONV_SHAPE, PRECISIONS, build_conv, build_gemm, conv_macs
    from nothotdog.contract.runtime import load_onnx
    from nothotdog.export.convert import load_float32

    keras_model = load_float32(models.keras).model
    paths = {"float32": models.float32, "int8": models.int8}
    files = {"keras": models.keras, "onnx float32": models.float32, "onnx int8": models.int8}
    if SHIPPED_MODEL.is_file():
        paths["shipped"] = SHIPPED_MODEL
        files["shipped models/nothotdog.onnx"] = SHIPPED_MODEL
    sessions = {name: load_onnx(path, ONNX_THREADS) for name, path in paths.items()}
    macs = {name: conv_macs(path) for name, path in paths.items()}  # Keras: as float32 ONNX

    def keras_predict(x: np.ndarray) -> np.ndarray:
        return keras_model.predict(x, verbose=0)

    def keras_call(x: np.ndarray) -> np.ndarray:
        return np.asarray(keras_model(x, training=False))

    configs: list[Config] = []
    for batch in BATCH_SIZES:
        calls = B1_CALLS_PER_ROUND if batch == 1 else 1
        keras_macs = macs["float32"].total
        configs.append(Config(f"keras predict b{batch}", "keras predict", "float32", batch,
                              keras_predict, calls, baseline=batch == 1, macs=keras_macs,
                              floor="float32"))
        if batch == 1:  # for information: how much of the baseline is predict's overhead
            configs.append(Config("keras model(x) b1", "keras model(x)", "float32", batch,
                                  keras_call, calls, macs=keras_macs, floor="float32"))
        for precision, model in sessions.items():
            label = "shipped" if precision == "shipped" else f"ort {precision}"
            configs.append(Config(f"{label} b{batch}", "onnxruntime", precision, batch,
                                  model.predict, calls, macs=macs[precision].total,
                                  floor=macs[precision].precision))
    for precision in PRECISIONS:
        gemm = build_gemm(precision, intra_op_threads=ONNX_THREADS)
        m, k, n = gemm.shape
        configs.append(Config(f"floor {precision} GEMM {m}x{k}x{n}", "onnxruntime", precision,
                              1, lambda _x, g=gemm: g.run(), macs=gemm.macs, floor=precision,
                              is_floor=True))
    conv = build_conv(intra_op_threads=ONNX_THREADS)
    c, h, w = CONV_SHAPE
    configs.append(Config(f"floor int8 conv 3x3 {c}ch {h}x{w}", "onnxruntime", "int8", 1,
                          lambda _x, g=conv: g.run(), macs=conv.macs, floor="int8",
                          is_floor=True))
    return configs, files


def measure(configs: list[Config], images: np.ndarray, rounds: int, budget_s: float) -> int:
    """Warm up, then interleave: round r runs every config, starting at config r mod n."""
    for config in configs:
        for i in range(WARMUP_CALLS):
            config.run(images[i : i + config.batch])
    clock = Stopwatch()
    done = 0
    for r in range(rounds):
        if clock.seconds > budget_s:
            break
        order = configs[r % len(configs) :] + configs[: r % len(configs)]
        for config in order:
            for c in range(config.calls_per_round):
                start = (r * config.calls_per_round + c) % (len(images) - config.batch + 1)
                x = np.ascontiguousarray(images[start : start + config.batch])
                t0 = time.perf_counter()
                config.run(x)
                config.ms_per_image.append((time.perf_counter() - t0) * 1000 / config.batch)
        done += 1
    return done


def rss_probes(files: dict[str, Path], image: Path) -> list[dict[str, Any]]:
    """Each model in its own fresh interpreter: load, classify one photo, report VmHWM."""
    results = []
    for name, path in files.items():
        kind = "keras" if path.suffix == ".keras" else "onnx"
        proc = run_module("bench.rss_probe", kind, str(path), str(image), timeout=180)
        if proc.returncode != 0:
            results.append({"name": name, "error": proc.stderr.strip()[-500:]})
            continue
        results.append({"name": name, **json.loads(proc.stdout.strip().splitlines()[-1])})
    return results


def summarise(configs: list) -> tuple[list[tuple], list[dict[str, Any]]]:
    """Table rows and JSON records per model configuration, against this run's floor."""
    floors = [c for c in configs if c.is_floor]
    rate = fastest(floors)  # GMAC/s of this machine, this run: the best per precision
    models_only = [c for c in configs if not c.is_floor]
    base = median(next(c for c in models_only if c.baseline).ms_per_image)
    rows, records = [], []
    for c in models_only:
        med, p90 = median(c.ms_per_image), percentile(c.ms_per_image, 90)
        floor = floor_ms(c.macs, rate[c.floor]) if c.macs else float("nan")
        rows.append((c.name, c.batch, len(c.ms_per_image), med, p90, base / med,
                     f"{c.floor} {floor:.1f}", med / floor))
        records.append({"name": c.name, "engine": c.engine, "precision": c.precision,
                        "batch": c.batch, "samples": len(c.ms_per_image),
                        "median_ms_per_image": round(med, 2), "p90_ms_per_image": round(p90, 2),
                        "speedup_vs_keras_predict_b1": round(base / med, 2),
                        "gmac_per_image": round(c.macs / 1e9, 3), "floor": c.floor,
                        "floor_ms_per_image": round(floor, 2), "x_floor": round(med / floor, 3),
                        "ms_per_image": [round(t, 2) for t in c.ms_per_image]})
    return rows, records


def print_tables(origin: str, rounds: int, floors: list, rows: list[tuple],
                 sizes: dict[str, int], probes: list[dict[str, Any]]) -> None:
    """What a reader of the run sees: the floor, each model against it, sizes, peak RSS."""
    print()
    print(f"CPU: {describe_cpu()}")
    print(f"Weights: {origin}")
    print(table(["floor GEMM (onnxruntime, bot's threads)", "n", "median ms", "GMAC/s"],
                [(c.name, len(c.ms_per_image), median(c.ms_per_image), c.gmac_per_s)
                 for c in floors], title=f"This machine's floor, in the same {rounds} rounds"))
    print()
    print(table(["configuration", "batch", "n", "median ms/img", "p90 ms/img", "x vs keras b1",
                 "floor ms/img", "x the floor"], rows,
                title=f"Inference, {rounds} interleaved rounds (x vs keras = Keras predict b1 "
                      "median / this median, higher is faster; x the floor = this median / "
                      "the floor, 1.0 is the most this CPU allows)"))
    print()
    size_rows = [(name, f"{size / 1e6:.1f}") for name, size in sizes.items()]
    print(table(["model file", "MB"], size_rows, title="Model files"))
    print()
    rss_rows = [(p["name"], p.get("peak_rss_mb", "error"),
                 "yes" if p.get("tensorflow_imported") else "no", p.get("answer", p.get("error")))
                for p in probes]
    print(table(["model (fresh process: load + 1 photo)", "peak RSS MB", "TensorFlow imported",
                 "answer"], rss_rows, title="Peak RSS"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--run", type=Path, help="training run folder with model.keras")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S,
                        help="seconds for the timed rounds (default %(default)s)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    clock = Stopwatch()

    from bench.models import cache_int8, export_models
    from bench.photos import model_inputs, telegram_photo

    with tempfile.TemporaryDirectory(prefix="nothotdog-bench-") as tmp:
        work = Path(tmp)
        log = lambda m: print(f"[inference] {m}", flush=True)  # noqa: E731
        models = export_models(work / "models", run=args.run, log=log)
        cached = cache_int8(models)
        log(f"int8 model kept for bench.load/bench.startup: {cached}")
        images = model_inputs(8, seed=7)
        configs, files = build_configs(models)
        log(f"timing {len(configs)} configurations, interleaved, up to {args.rounds} rounds "
            f"or {args.budget:.0f}s")
        rounds = measure(configs, images, args.rounds, args.budget)
        photo = work / "photo-320.jpg"
        photo.write_bytes(telegram_photo(seed=3)[1])
        log("peak RSS: one fresh process per model")
        probes = rss_probes(files, photo)
        sizes = {name: path.stat().st_size for name, path in files.items()}

    floors = [c for c in configs if c.is_floor]
    rows, records = summarise(configs)
    print_tables(models.origin, rounds, floors, rows, sizes, probes)
    bot_path = [p for p in probes if p.get("kind") == "onnx"]
    tf_free = all(not p["tensorflow_imported"] for p in bot_path)
    print(f"bot path (ONNX) imports TensorFlow: {'no' if tf_free else 'YES (a bug)'}")
    write_result("inference", {
        "weights": models.origin,
        "export_seconds": models.export_seconds,
        "rounds": rounds,
        "warmup_calls": WARMUP_CALLS,
        "baseline": "keras predict b1",
        "configs": records,
        "floor": {"onnx_threads": ONNX_THREADS, "gemms": [
            {"name": c.name, "precision": c.floor, "macs": c.macs, "samples": len(c.ms_per_image),
             "median_ms": round(median(c.ms_per_image), 2), "gmac_per_s": round(c.gmac_per_s, 1),
             "ms": [round(t, 2) for t in c.ms_per_image]} for c in floors]},
        "file_sizes_bytes": sizes,
        "peak_rss": probes,
        "bot_path_imports_tensorflow": not tf_free,
    }, clock)
    return 0 if tf_free and all("error" not in p for p in probes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
