"""``python -m bench.heatmap [--model FILE]``: what the ``heatmap`` output costs the verdict.

Three ways of running one model file at batch 1, interleaved in one process (each round runs
each once, in a rotating order, so a busy machine slows them alike):

- *without heatmap*: the same graph with the heatmap branch taken out (the baseline: the
  verdict of a file without the heatmap);
- *verdict*: the file as shipped, asking for ``probabilities`` only (``OnnxModel.predict``,
  the bot's normal path);
- *verdict + heatmap*: asking for both (``OnnxModel.explain``, the ``/why`` path).

The goal: the verdict path is at most 5% slower than without the heatmap. Wall time and the
process's CPU time (all onnxruntime threads) are both kept: on a machine shared with other
work, CPU time measures the work done and barely moves with what the others do.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from bench.common import SHIPPED_MODEL, median, percentile, table, write_result
from nothotdog.contract import HEATMAP_NAME, decode_image
from nothotdog.contract.runtime import OnnxModel, load_onnx
from nothotdog.training.int8 import side_branch

ROUNDS = 60
WARMUP = 3
BUDGET_S = 120.0
GOAL = 1.05


def without_heatmap(path: Path, out: Path) -> Path:
    """``path`` as it was before the heatmap: its output, nodes and constants removed."""
    proto = onnx.load(str(path))
    branch = set(side_branch(proto))
    kept = [node for node in proto.graph.node if node.name not in branch]
    del proto.graph.node[:]
    proto.graph.node.extend(kept)
    outputs = [o for o in proto.graph.output if o.name != HEATMAP_NAME]
    del proto.graph.output[:]
    proto.graph.output.extend(outputs)
    used = {name for node in kept for name in node.input}
    inits = [t for t in proto.graph.initializer if t.name in used]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(inits)
    onnx.save(proto, str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.heatmap", description=__doc__)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds, at most")
    parser.add_argument("--threads", type=int, default=0,
                        help="onnxruntime threads (default 0: all cores, as the bot)")  # fmt: skip
    args = parser.parse_args(argv)

    from bench.photos import telegram_photo

    model = load_onnx(args.model, intra_op_threads=args.threads)
    if not model.has_heatmap:
        raise SystemExit(f"{args.model} has no heatmap output")


    with tempfile.TemporaryDirectory() as tmp:
        old = load_onnx(without_heatmap(args.model, Path(tmp) / "old.onnx"), args.threads)
    image = decode_image(telegram_photo(0)[1])[None]
    runs = {
        "without heatmap (old file), probabilities": lambda: old.predict(image),
        "verdict: probabilities only": lambda: model.predict(image),
        "/why: probabilities + heatmap": lambda: model.explain(image),
    }
    check(old, model, image)
    for run in runs.values():
        for _ in range(WARMUP):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    started = time.perf_counter()
    for r in range(args.rounds):
        if time.perf_counter() - started > args.budget:
            break
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            runs[name]()
            cpu[name].append(1000.0 * (time.process_time() - c0))
            times[name].append(1000.0 * (time.perf_counter() - t0))
    wall0, cpu0 = median(times[names[0]]), median(cpu[names[0]])
    rows = [
        [name, len(times[name]), median(times[name]), percentile(times[name], 90),
         median(times[name]) / wall0, median(cpu[name]), median(cpu[name]) / cpu0]
        for name in names
    ]  # fmt: skip
    headers = ["batch 1", "runs", "wall median ms", "wall p90 ms", "wall ratio",
               "CPU median ms", "CPU ratio"]  # fmt: skip
    print(table(headers, rows, f"heatmap cost, {args.model}, onnxruntime threads {args.threads}"))
    ratios = {
        "verdict_vs_old_wall": rows[1][4],
        "verdict_vs_old_cpu": rows[1][6],
        "why_vs_verdict_wall": median(times[names[2]]) / median(times[names[1]]),
        "why_vs_verdict_cpu": median(cpu[names[2]]) / median(cpu[names[1]]),
    }
    print(", ".join(f"{k} {v:.3f}x" for k, v in ratios.items()) + f" (goal: verdict <= {GOAL})")
    write_result("heatmap", {
        "model": str(args.model),
        "onnx_threads": args.threads,
        "rows": [dict(zip(["name", "runs", "wall_median_ms", "wall_p90_ms", "wall_ratio",
                           "cpu_median_ms", "cpu_ratio"], r, strict=True)) for r in rows],
        **ratios,
        "goal_met": max(ratios["verdict_vs_old_wall"], ratios["verdict_vs_old_cpu"]) <= GOAL,
    })  # fmt: skip
    return 0


def check(old: OnnxModel, new: OnnxModel, image: np.ndarray) -> None:
    """The three paths agree bit for bit on the verdict, or the timing means nothing."""
    reference = old.predict(image)
    if not (np.array_equal(reference, new.predict(image))
            and np.array_equal(reference, new.explain(image)[0])):  # fmt: skip
        raise SystemExit("the probabilities differ between the paths")


if __name__ == "__main__":
    raise SystemExit(main())
