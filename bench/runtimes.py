"""``python -m bench.runtimes [--model PATH]``: OpenVINO against onnxruntime, same file.

The model file (the shipped one by default) runs on each runtime as the bot runs it
(contract.runtime.load_onnx, ONNX_THREADS's default: all cores), batch 1 and batch 8, on
photos decoded by the bot's own decode. Each runtime runs in a fresh interpreter of its own
and they take turns A B B A: in one process they disturb each other (onnxruntime's threads
spin for a while after each call and slow whatever runs next), and taking turns lets a drift
of a shared machine hit both alike. Reported: median ms per photo for each runtime and batch
(over both turns), the speed-up of OpenVINO, load time, and how far the two runtimes'
answers are apart on the same photos (largest |delta P|, verdicts that differ).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    SHIPPED_MODEL,
    Stopwatch,
    describe_cpu,
    median,
    run_module,
    table,
    write_result,
)

RUNTIMES = ("openvino", "onnxruntime")
BATCHES = {1: 30, 8: 6}  # batch size -> timed calls per turn
WARMUP_CALLS = 3
PHOTOS = 16


def child(model: Path, runtime: str) -> dict[str, Any]:
    """One turn, in this fresh interpreter: load, warm up, time each batch size."""
    from bench.photos import model_inputs
    from nothotdog.contract.runtime import load_onnx

    images = model_inputs(PHOTOS, seed=21)
    started = time.perf_counter()
    loaded = load_onnx(model, 0, runtime)  # type: ignore[arg-type]
    load_s = time.perf_counter() - started
    out: dict[str, Any] = {"runtime": loaded.runtime, "load_s": round(load_s, 3), "ms": {}}
    for batch, calls in BATCHES.items():
        for i in range(WARMUP_CALLS):
            loaded.predict(images[i : i + batch])
        times = []
        for i in range(calls):
            start = i * batch % (PHOTOS - batch + 1)
            x = np.ascontiguousarray(images[start : start + batch])
            t0 = time.perf_counter()
            loaded.predict(x)
            times.append((time.perf_counter() - t0) * 1000 / batch)
        out["ms"][str(batch)] = times
    out["probabilities"] = loaded.predict(images).tolist()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runtimes",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--child", choices=RUNTIMES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.model, args.child)))
        return 0
    clock = Stopwatch()
    turns: dict[str, list[dict[str, Any]]] = {rt: [] for rt in RUNTIMES}
    for runtime in (*RUNTIMES, *RUNTIMES[::-1]):
        proc = run_module("bench.runtimes", "--model", str(args.model), "--child", runtime,
                          timeout=300)  # fmt: skip
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        turn = json.loads(proc.stdout.strip().splitlines()[-1])
        if turn["runtime"] != runtime:
            print(f"asked for {runtime}, ran on {turn['runtime']}", file=sys.stderr)
            return 1
        turns[runtime].append(turn)
        print(f"[runtimes] {runtime}: " + ", ".join(
            f"b{b} {median(ms):.1f} ms" for b, ms in turn["ms"].items()), flush=True)
    med = {rt: {b: median([t for turn in ts for t in turn["ms"][str(b)]]) for b in BATCHES}
           for rt, ts in turns.items()}  # fmt: skip
    p_ov, p_ort = (np.array(turns[rt][0]["probabilities"]) for rt in RUNTIMES)
    max_dp = float(np.abs(p_ov - p_ort).max())
    differ = int((p_ov.argmax(1) != p_ort.argmax(1)).sum())
    rows = [(f"batch {b}", med["onnxruntime"][b], med["openvino"][b],
             med["onnxruntime"][b] / med["openvino"][b]) for b in BATCHES]  # fmt: skip
    print()
    print(f"CPU: {describe_cpu()}")
    print(f"Model: {args.model}")
    print(table(["ms per photo (median, 2 turns each)", "onnxruntime", "openvino",
                 "openvino speed-up"], rows,
                title="Same file, each runtime in its own process, turns A B B A"))  # fmt: skip
    load = {rt: median([t["load_s"] for t in ts]) for rt, ts in turns.items()}
    print(f"load: onnxruntime {load['onnxruntime']:.2f} s, openvino {load['openvino']:.2f} s; "
          f"answers on {PHOTOS} photos: largest |delta P| {max_dp:.4f}, "
          f"{differ} verdicts differ")
    write_result("runtimes", {
        "model": str(args.model),
        "median_ms_per_photo": {rt: {str(b): round(v, 2) for b, v in m.items()}
                                for rt, m in med.items()},
        "speedup": {str(b): round(med["onnxruntime"][b] / med["openvino"][b], 2)
                    for b in BATCHES},
        "load_s": load,
        "max_abs_delta_p": round(max_dp, 5),
        "verdicts_differ": differ,
        "turns": {rt: [{k: v for k, v in t.items() if k != "probabilities"} for t in ts]
                  for rt, ts in turns.items()},
    }, clock)  # fmt: skip
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
