"""``nothotdog-export RUN --out models/NAME.onnx``: convert a trained Keras model to the bot's
ONNX file, prove parity, optionally quantize it behind an accuracy gate (the epilog below says
what is written where)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import nothotdog.export as d
from nothotdog.contract.dataset import DatasetError
from nothotdog.contract.layout import RunFolderError
from nothotdog.contract.runtime import ModelLoadError
from nothotdog.contract.version import add_version
from nothotdog.training import int8

PROG = "nothotdog-export"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a trained Keras model into the bot's ONNX file, prove it matches "
        "Keras, and optionally quantize it to int8 behind an accuracy gate.",
        epilog="With --quantize int8 the int8 model goes to --out and the float32 one stays "
        "beside it as NAME.float32.onnx. What was measured goes to NAME.export.json, also when "
        "a check fails; nothing is written at --out unless every check passed.",
    )
    add_version(p)
    p.add_argument("source", type=Path, nargs="?",
                   help="training run folder, or a bare .keras file")
    p.add_argument("--out", type=Path,
                   help="models/NAME.onnx (with --add-features: default FILE itself)")
    p.add_argument("--add-features", type=Path, metavar="FILE",
                   help="instead of an export: add the 'features' output (what /teach needs) to "
                        "an exported .onnx file, after proving its verdicts stay bit-identical")
    p.add_argument("--quantize", choices=["int8"], help="ship a static int8 model at --out")
    p.add_argument("--calibration", type=Path, metavar="DIR",
                   help="labelled folder (training images) to calibrate int8 on")
    p.add_argument("--check", type=Path, metavar="DIR",
                   help="labelled folder for parity and for the int8 accuracy gate")
    p.add_argument("--max-drop", type=float, metavar="POINTS", default=d.DEFAULT_MAX_DROP,
                   help="accuracy points int8 may lose against float32 (default %(default)s)")
    p.add_argument("--calibration-images", type=int, metavar="N",
                   default=int8.DEFAULT_CALIBRATION_IMAGES,
                   help="stratified, seeded sample size (default %(default)s; 0 = all)")
    p.add_argument("--parity-images", type=int, metavar="N", default=d.DEFAULT_PARITY_IMAGES,
                   help="stratified sample of --check for Keras vs ONNX (default %(default)s; "
                        "0 = all)")
    p.add_argument("--tolerance", type=float, default=d.TOLERANCE,
                   help="max |Δprobability| Keras vs ONNX (default %(default)g)")
    p.add_argument("--exclude", default=int8.DEFAULT_EXCLUDE, metavar="GROUPS",
                   help="node groups kept float when quantizing: 'none' or "
                        f"{'+'.join(int8.EXCLUDE_GROUPS)} or a part of it (default %(default)s)")
    p.add_argument("--activations", choices=int8.ACTIVATION_CHOICES,
                   default=int8.DEFAULT_ACTIVATIONS,
                   help="int8 activation type (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="for the calibration sample")
    p.add_argument("--opset", type=int, default=int8.DEFAULT_OPSET)
    p.add_argument("--model-version", help="default: RUN-NAME-<weights sha256 prefix>")
    args = p.parse_args(argv)
    if args.add_features is not None and args.source is not None:
        p.error("--add-features FILE takes no training run")
    if args.add_features is None and (args.source is None or args.out is None):
        p.error("give a training run and --out (or --add-features FILE)")
    if args.out is not None and args.out.suffix != ".onnx":
        p.error("--out must name a .onnx file")
    if args.quantize and (args.calibration is None or args.check is None):
        p.error("--quantize int8 needs --calibration DIR (to calibrate) and --check DIR (the gate)")
    try:
        int8.parse_exclude(args.exclude)
    except int8.QuantizationError as exc:
        p.error(f"--exclude: {exc}")
    if args.opset < d.MIN_OPSET:
        p.error(f"--opset must be {d.MIN_OPSET} or newer")
    return args


def log(message: str) -> None:
    print(f"[export] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.add_features is not None:
        return add_features(args.add_features, args.out)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's chatter off progress
    # Imported here: they import TensorFlow, which reads TF_CPP_MIN_LOG_LEVEL once, at import
    # (and takes seconds to import, which --help and a bad argument need not wait for).
    from nothotdog.export.checks import ParityError
    from nothotdog.export.convert import ConversionError
    from nothotdog.export.pipeline import ExportOptions, run_export

    # What ends as a failed export (exit 1, the reason in the summary), not as a traceback.
    expected = (RunFolderError, DatasetError, ConversionError, ParityError,
                int8.QuantizationError, ModelLoadError)  # fmt: skip
    # Every option is named like its ExportOptions or QuantSettings field.
    a = vars(args)
    a.pop("add_features")
    quant = {k: a.pop(k) for k in ("calibration_images", "seed", "exclude", "activations")}
    opts = ExportOptions(**a, quant=int8.QuantSettings(**quant))
    summary: dict[str, Any] = {"command": [PROG, *(sys.argv[1:] if argv is None else argv)]}
    started = time.perf_counter()
    try:
        run_export(opts, summary, log)
        summary["status"] = "ok"
    except expected as exc:
        summary.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    summary["seconds"] = round(time.perf_counter() - started, 1)
    path = opts.summary_path  # written also when a check failed: it holds what was measured
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    if summary["status"] == "failed":
        print(f"[export] FAILED: {summary['error']}", file=sys.stderr, flush=True)
        log(f"nothing written at {opts.out}; figures in {path}")
        return 1
    log(f"done in {summary['seconds']:.0f}s; summary {path}")
    return 0


def add_features(path: Path, out: Path | None) -> int:
    """``--add-features``: no TensorFlow, no run folder, no summary file: one graph edit."""
    from nothotdog.export.features import add_features_to_file

    try:
        written = add_features_to_file(path, out)
    except (ModelLoadError, OSError, ValueError) as exc:
        print(f"[export] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    log(f"{written}: the same verdicts, bit for bit, and a 'features' output")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
