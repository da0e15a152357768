"""The export, step by step: load, convert, label, prove parity, write, quantize behind a gate.

Each step logs what it measured and adds it to ``summary``, which the CLI writes next to the
model even when a later step fails.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from nothotdog import export
from nothotdog.contract import ModelSpec
from nothotdog.contract.dataset import list_examples
from nothotdog.contract.runtime import ModelLoadError, OpenVinoEngine, load_onnx, openvino_installed
from nothotdog.export import checks, convert, metadata
from nothotdog.export.features import add_features
from nothotdog.export.heatmap import add_heatmap
from nothotdog.training import int8
from nothotdog.training.weights import sha256_file

# Layout or precision changes that would mean the int8 convolution stack is broken up.
CONV_OPS = frozenset({"Conv", "QLinearConv", "FusedConv", "NhwcFusedConv", "NhwcConv"})
INTRUDERS = frozenset(
    {"Transpose", "Cast", "QuantizeLinear", "DequantizeLinear", "ReorderInput", "ReorderOutput"}
)
Log = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    source: Path
    out: Path
    quantize: str | None = None  # "int8" or None
    calibration: Path | None = None
    check: Path | None = None
    max_drop: float = export.DEFAULT_MAX_DROP
    parity_images: int = export.DEFAULT_PARITY_IMAGES
    tolerance: float = export.TOLERANCE
    quant: int8.QuantSettings = field(default_factory=int8.QuantSettings)
    opset: int = int8.DEFAULT_OPSET
    model_version: str | None = None

    @property
    def float32_path(self) -> Path:
        """With int8 at --out, the float32 model stays beside it as the reference."""
        return self.out.with_name(f"{self.out.stem}.float32.onnx") if self.quantize else self.out

    @property
    def summary_path(self) -> Path:
        return self.out.with_name(f"{self.out.stem}.export.json")


def run_export(opts: ExportOptions, summary: dict[str, Any], log: Log = print) -> None:
    if opts.quantize and (opts.calibration is None or opts.check is None):
        raise ValueError("int8 needs a calibration folder and a check folder")
    run = metadata.read_run(opts.source)
    log(f"source {run.model_path} (labels {list(run.labels)}, threshold {run.threshold:g})")
    summary["source"] = {"model": str(run.model_path.resolve()),
                         "run_dir": str(run.run_dir.resolve()) if run.run_dir else None,
                         "model_file_sha256": sha256_file(run.model_path)}  # fmt: skip

    loaded, proto, spec = _convert(run, opts, summary, log)
    _check_parity(loaded, proto, spec, opts, summary, log)

    opts.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=opts.out.parent, prefix=f".{opts.out.stem}-") as tmp:
        work = Path(tmp)
        staged = work / "float32.onnx"
        onnx.save(proto, str(staged))
        verify_file(staged)
        os.replace(staged, opts.float32_path)
        summary["files"] = {"float32": file_info(opts.float32_path)}
        log(f"wrote {opts.float32_path} ({opts.float32_path.stat().st_size / 1e6:.1f} MB)")
        if opts.quantize:
            quantize_and_gate(opts, spec, work, summary, log)


def _convert(
    run: metadata.TrainedRun, opts: ExportOptions, summary: dict[str, Any], log: Log
) -> tuple[convert.Float32Model, onnx.ModelProto, ModelSpec]:
    """The Keras model as float32, converted to ONNX with preprocessing folded in, the
    heatmap output added and the contract's metadata written."""
    step = time.perf_counter()
    loaded = convert.load_float32(run.model_path)
    model = loaded.model
    classes = model.outputs[0].shape[-1]
    if classes != len(run.labels):
        raise convert.ConversionError(f"model has {classes} outputs but {len(run.labels)} labels")
    log(f"loaded Keras model as float32 (trained as {loaded.trained_policy}) "
        f"in {time.perf_counter() - step:.1f}s")

    step = time.perf_counter()
    proto = convert.to_onnx(model, opts.opset)
    convert.fold_preprocessing(proto)
    sha = metadata.weights_sha256(model.get_weights())
    spec = metadata.build_spec(run, name=opts.out.stem, weights_sha=sha, version=opts.model_version)
    spec = add_heatmap(proto, spec)  # the second output, for /why; probabilities untouched
    spec = add_features(proto, spec)  # the third, for /teach; the head's input, as it is
    metadata.write_metadata(proto, spec)
    onnx.checker.check_model(proto, full_check=True)
    log(f"converted with tf2onnx (opset {opts.opset}), preprocessing folded into the first "
        f"convolution, in {time.perf_counter() - step:.1f}s; version {spec.version}")
    summary["spec"] = spec.to_metadata()
    summary["conversion"] = {
        "path": "tf2onnx.convert.from_keras with an explicit uint8 input_signature; "
        "preprocessing folded into the first convolution (export.convert)",
        "opset": opts.opset,
        "trained_policy": loaded.trained_policy,
    }
    return loaded, proto, spec


def _check_parity(
    loaded: convert.Float32Model, proto: onnx.ModelProto, spec: ModelSpec, opts: ExportOptions,
    summary: dict[str, Any], log: Log,
) -> None:
    """The ONNX graph must give Keras's probabilities and labels (raises ParityError)."""
    # Real photos when there are some: generated images can miss real activation ranges.
    step = time.perf_counter()
    if opts.check is not None:
        examples = _sample(opts.check, spec.labels, opts.parity_images)
        images, _, skipped = int8.decode_examples(examples)
        names: list[str] | None = [str(e.path) for e in examples if e.path not in skipped]
        source = str(opts.check)
    else:
        images, names, source = checks.generated_images(), None, "generated"
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    parity = checks.check_parity(loaded.model, session, images, spec, source, names, opts.tolerance)
    summary["parity"] = parity.as_dict()
    log(f"parity ok on {parity.images} images ({source}): max |Δp| {parity.max_abs_diff:.2e} "
        f"(limit {opts.tolerance:g}), same label on all ({time.perf_counter() - step:.1f}s)")
    features = checks.check_features_parity(loaded.model, session, images)
    summary["parity"]["features"] = features
    log(f"features match Keras's pooling: max |Δ| {features['max_relative_diff']:.2e} of the "
        f"largest value (limit {features['tolerance']:g})")
    if loaded.trained is not None:
        # Information, not a gate: how far float32 serving sits from the model as trained.
        drift = checks.compare(checks.keras_probabilities(loaded.trained, images),
                               checks.onnx_probabilities(session, images), spec, source, names)
        summary["trained_precision_drift"] = drift.as_dict()
        log(f"vs the {loaded.trained_policy} model as trained: max |Δp| "
            f"{drift.max_abs_diff:.2e}, {drift.label_mismatches} label(s) differ (information)")


def quantize_and_gate(
    opts: ExportOptions, spec: ModelSpec, work: Path, summary: dict[str, Any], log: Log
) -> None:
    assert opts.calibration is not None and opts.check is not None
    settings = opts.quant
    if opts.calibration.resolve() == opts.check.resolve():
        log("warning: calibrating on the check folder makes the gate optimistic")
    examples = _sample(opts.calibration, spec.labels, settings.calibration_images, settings.seed)
    log(f"quantizing: quant_pre_process, then calibration on {len(examples)} images sampled "
        f"from {opts.calibration} by class and source (seed {settings.seed})")
    int8_first_conv = "first_conv" not in int8.parse_exclude(settings.exclude)
    proto, result = int8.quantize_int8(opts.float32_path, int8.ExampleReader(examples), settings,
                                       work, pixels=convert.PADDED)  # fmt: skip
    if int8_first_conv:
        convert.feed_uint8(proto)  # the int8 convolutions read the uint8 image itself
    metadata.write_metadata(proto, metadata.with_quantization(spec, result.description))
    convert.tidy(proto)
    onnx.checker.check_model(proto, full_check=True)
    staged = work / "int8.onnx"
    onnx.save(proto, str(staged))  # the int8 file's one write; the gate decides if it moves
    verify_file(staged)
    summary["quantization"] = {"settings": vars(settings), **vars(result)}
    log(f"quantized in {result.seconds:.1f}s; kept float: {result.excluded_nodes or 'nothing'}")
    stack = stack_report(optimized_ops(staged))
    summary["quantization"]["onnxruntime_graph"] = stack
    log(f"onnxruntime's optimized graph: {stack['convolutions']} convolutions, "
        f"{stack['inside_stack'] or 'no Transpose, Cast or (De)QuantizeLinear'} between them")
    if stack["inside_stack"] and int8_first_conv:
        raise int8.QuantizationError(
            f"the int8 convolution stack is broken up by {stack['inside_stack']}"
        )

    check = _sample(opts.check, spec.labels)
    log(f"comparing float32 and int8 on {len(check)} images from {opts.check}")
    comparison = checks.compare_models(opts.float32_path, staged, check, opts.max_drop)
    summary["comparison"] = comparison.as_dict()
    log("float32 vs int8, measured in this run:\n" + comparison.table())
    checks.gate(comparison)
    os.replace(staged, opts.out)
    summary["files"]["int8"] = file_info(opts.out)
    summary["comparison"]["int8"]["path"] = str(opts.out)
    log(f"int8 passed the gate; wrote {opts.out} ({opts.out.stat().st_size / 1e6:.1f} MB)")


def verify_file(path: Path) -> None:
    """Load the file as the bot will, on each runtime that is installed (a file OpenVINO
    cannot compile fails here, not as a warning at the bot's start), and check every
    promised metadata key."""
    load_onnx(path, intra_op_threads=1, runtime="onnxruntime")
    if openvino_installed():
        try:
            OpenVinoEngine(path, threads=1)
        except Exception as exc:  # OpenVINO raises its own untyped errors
            raise ModelLoadError(f"OpenVINO cannot run {path}: {exc}") from exc
    missing = [key for key in metadata.REQUIRED_KEYS if key not in metadata.read_metadata(path)]
    if missing:
        raise ModelLoadError(f"{path} lacks metadata {missing}")


def file_info(path: Path) -> dict[str, Any]:
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def _sample(root: Path, labels: Sequence[str], limit: int = 0, seed: int = 0) -> list:
    """A seeded sample of a labelled folder, stratified by class and source (0: all of it)."""
    return int8.stratified_sample(list_examples(root, labels), limit, seed)


def optimized_ops(path: str | Path) -> list[str]:
    """Op types, in order, of the graph onnxruntime builds from ``path`` on this CPU: whether it
    keeps the convolution stack in int8 NHWC (the point of the fold) shows there, not in ours."""
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        options.log_severity_level = 3  # its "hardware-specific graph" warning is expected here
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]


def stack_report(ops: list[str]) -> dict[str, object]:
    """Counts of all ops, and the intruders found between the first and last convolution."""
    convs = [i for i, op in enumerate(ops) if op in CONV_OPS]
    inside = ops[convs[0] : convs[-1] + 1] if convs else []
    return {"ops": dict(sorted(Counter(ops).items())), "convolutions": len(convs),
            "inside_stack": [op for op in inside if op in INTRUDERS]}  # fmt: skip
