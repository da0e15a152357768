"""Evaluation: the report (metrics JSON, PNG plots, a text summary) and ``nothotdog-eval``.

Training (after each phase) and ``nothotdog-eval MODEL DATA_DIR`` (any model form, any
labelled folder) both call ``write_evaluation``, so their numbers and pictures are comparable by
construction. The ONNX path never imports TensorFlow: it must run where only the bot's
dependencies are installed. Figures are ``matplotlib.figure.Figure`` objects (scikit-learn's
displays draw on their axes, ``training.plots``), never pyplot's: no global figure state.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nothotdog.contract import INPUT_SIZE, ImageDecodeError, MetaKey, layout, load_image_file
from nothotdog.contract.dataset import DatasetError, Example, list_examples
from nothotdog.contract.runtime import RUNTIMES, ModelLoadError, Runtime, load_onnx
from nothotdog.contract.version import add_version
from nothotdog.training.metrics import compute_metrics
from nothotdog.training.plots import (
    WORST_MISTAKES_SHOWN,
    HeatmapFn,
    plot_confusion_matrix,
    plot_history,
    plot_roc,
    plot_worst_mistakes,
)

PredictFn = Callable[[np.ndarray], np.ndarray]


class EvaluationError(RuntimeError):
    """Bad input to the evaluation; the message is one line, meant for the command line."""


@dataclass
class Predictor:
    """What evaluation needs from any model form: a batch predictor and the contract facts."""

    predict: PredictFn
    labels: tuple[str, ...]
    positive_label: str
    threshold: float
    input_size: int
    kind: str  # "onnx on RUNTIME" or "keras", for the summary
    heatmap: HeatmapFn | None = None  # an ONNX file with the heatmap output: one image's map


def predict_examples(
    predict_fn: PredictFn, examples: Sequence[Example], batch_size: int = 32,
    progress: bool = True, *, size: int = INPUT_SIZE,
) -> np.ndarray:  # fmt: skip
    """Probabilities ``float32 [n, classes]`` for ``examples``, decoded in batches by the bot's
    own decode (measured and served pixels are identical). An unreadable image raises
    ``EvaluationError`` naming the file: silently skipping it would change the figures."""
    if not examples:
        raise EvaluationError("no examples to evaluate")
    if batch_size < 1:
        raise EvaluationError(f"batch size must be at least 1, got {batch_size}")
    outputs: list[np.ndarray] = []
    with tqdm(total=len(examples), desc="evaluating", unit="img", disable=not progress) as bar:
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            batch = np.stack([_decode(e.path, size) for e in chunk])
            probs = np.asarray(predict_fn(batch), dtype=np.float32)
            if probs.ndim != 2 or probs.shape[0] != len(chunk):
                raise EvaluationError(
                    f"the model returned shape {probs.shape} for a batch of {len(chunk)}"
                )
            outputs.append(probs)
            bar.update(len(chunk))
    return np.concatenate(outputs)


def _decode(path: Path, size: int) -> np.ndarray:
    try:
        return load_image_file(path, size)
    except (OSError, ImageDecodeError) as exc:
        raise EvaluationError(f"cannot read image {path}: {exc}") from exc


def load_predictor(path: str | Path, runtime: Runtime = "auto") -> Predictor:
    """An ``.onnx`` file (on ``runtime``), a ``.keras`` file, or a training run folder holding
    ``model.keras``."""
    path = Path(path)
    if not path.exists():
        raise EvaluationError(f"model {path} does not exist")
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path, runtime)
    if path.is_dir():
        keras_file = path / layout.MODEL_FILE
        if not keras_file.is_file():
            raise EvaluationError(f"{path} is a folder without {layout.MODEL_FILE}")
        return _load_keras(keras_file)
    if path.suffix.lower() == ".keras":
        return _load_keras(path)
    raise EvaluationError(f"{path} is neither an .onnx file, a .keras file nor a run folder")


def _load_onnx(path: Path, runtime: Runtime) -> Predictor:
    try:
        model = load_onnx(path, runtime=runtime)
    except ModelLoadError as exc:
        raise EvaluationError(str(exc)) from exc
    spec = model.spec

    def heatmap(path: Path) -> np.ndarray:
        return model.explain(load_image_file(path, spec.input_size)[None])[1][0]

    kind = f"onnx on {model.runtime}"
    return Predictor(model.predict, spec.labels, spec.positive_label, spec.threshold,
                     spec.input_size, kind, heatmap if model.has_heatmap else None)  # fmt: skip


def _load_keras(keras_file: Path) -> Predictor:
    """Labels from ``labels.json`` and threshold from ``metrics.json`` beside the model file;
    the contract's defaults (with a note) when a bare ``.keras`` file comes without them."""
    folder = keras_file.parent
    try:
        facts = layout.read_run_facts(folder)
    except layout.RunFolderError as exc:
        raise EvaluationError(str(exc)) from exc
    labels, positive, threshold = facts.labels, facts.positive_label, facts.threshold
    if not (folder / layout.LABELS_FILE).is_file():
        _note(f"no {layout.LABELS_FILE} beside {keras_file.name}; assuming labels {list(labels)}")
    if not (folder / layout.METRICS_FILE).is_file():
        _note(f"no {layout.METRICS_FILE} beside {keras_file.name}; using threshold {threshold}")

    # Imported here, not at the top: TensorFlow takes seconds to import, and an .onnx file
    # (the bot's, the usual case) needs none of it.
    import keras

    import nothotdog.training.model  # noqa: F401  registers VGGPreprocess for deserialisation

    try:
        model = keras.saving.load_model(keras_file, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EvaluationError(f"cannot load {keras_file}: {first_line}") from exc
    shape = model.input_shape
    size = shape[1] if isinstance(shape, tuple) and len(shape) == 4 and shape[1] else INPUT_SIZE
    if model.output_shape[-1] != len(labels):
        raise EvaluationError(
            f"{keras_file} has {model.output_shape[-1]} outputs but {len(labels)} labels"
        )

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(batch), dtype=np.float32)

    return Predictor(predict, labels, positive, threshold, int(size), "keras")


def _note(message: str) -> None:
    print(f"nothotdog-eval: note: {message}", file=sys.stderr)


def default_out_dir(model_path: Path, data_dir: Path) -> Path:
    """``RUN/eval-DATA`` for a run folder, ``MODEL_STEM-eval-DATA`` beside a model file; DATA is
    the data folder's name, prefixed by its parent's when it is a split such as ``val``."""
    data = data_dir.resolve()
    name = data.name if data.parent.name in ("", "/") else f"{data.parent.name}-{data.name}"
    if model_path.is_dir():
        return model_path / f"eval-{name}"
    return model_path.parent / f"{model_path.stem}-eval-{name}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nothotdog-eval",
        description="Evaluate a Keras model or an ONNX file on a labelled folder (one sub-folder "
        "per class) and write metrics.json plus plots, overall and per source tag.",
    )
    add_version(parser)
    add = parser.add_argument
    add("model", type=Path, help="an .onnx file (labels and threshold from its metadata), a "
        ".keras file, or a training run folder with model.keras, labels.json and metrics.json")
    add("data_dir", type=Path, help="folder with one sub-folder per model label, e.g. hot_dog/")
    add("--out", type=Path, help="where to write metrics.json and the plots (default: "
        "RUN/eval-DATA for a run folder, MODEL-eval-DATA beside a model file)")
    add("--threshold", type=float, help="decision threshold on P(positive) (default: the one "
        "the model carries, else 0.5)")
    add("--runtime", choices=RUNTIMES, default="auto", help="what runs an .onnx file (default: "
        "auto, as the bot: OpenVINO when installed)")
    add("--batch-size", type=int, default=32, help="images per inference batch (default: 32)")
    add("--no-progress", action="store_true", help="hide the progress bar")
    add("--sources", metavar="TAG,TAG", help="evaluate only photos of these source tags (e.g. "
        "the food sources, for a worst-mistakes grid of food)")
    add("--stamp", choices=["val", "test"], help="ONNX only: write these figures (overall and "
        "per source) into the file's metadata as its val or test metrics, so /about and the "
        "card report what this file scored")
    add("--min-accuracy", type=float, metavar="FRACTION",
        help="exit with status 3 when overall accuracy is below this (e.g. 0.95)")
    add("--min-source-accuracy", type=float, metavar="FRACTION", help="exit with status 3 when "
        "a source tag with at least --min-source-images images scores below this (e.g. 0.93)")
    add("--min-source-images", type=int, default=100, metavar="N", help="sources smaller than "
        "this are reported but not held to --min-source-accuracy (default: %(default)s)")
    return parser


STAMPED = ("n", "accuracy", "balanced_accuracy", "precision", "recall", "roc_auc", "ece")


def stamp(model_path: Path, metrics: dict, split: str, data_dir: Path) -> None:
    """Write a compact copy of ``metrics`` into the ONNX file's metadata (graph untouched)."""
    import onnx  # the train extra's: only --stamp needs it, an evaluation alone does not

    if model_path.suffix != ".onnx":
        raise EvaluationError("--stamp works on .onnx files only")

    def compact(m: dict) -> dict:
        return {k: m[k] for k in STAMPED if m.get(k) is not None}

    record = {**compact(metrics), "split": split, "data": data_dir.name}
    record["per_source"] = {t: compact(m) for t, m in (metrics.get("per_source") or {}).items()}
    key = MetaKey.TEST_METRICS if split == "test" else MetaKey.METRICS
    proto = onnx.load(str(model_path))
    props = {p.key: p.value for p in proto.metadata_props}  # the others stay, in their order
    onnx.helper.set_model_props(proto, {**props, key: json.dumps(record, sort_keys=True)})
    tmp = model_path.with_suffix(".stamping")
    onnx.save(proto, str(tmp))
    tmp.replace(model_path)


BELOW_BAR = 3  # exit status: the model is worse than the bar it was asked to meet


def shortfalls(metrics: dict, min_accuracy: float | None, min_source: float | None,
               min_images: int) -> list[str]:  # fmt: skip
    """One line per bar the metrics miss: what ``make model`` refuses to ship."""
    missed = []
    if min_accuracy is not None and metrics["accuracy"] < min_accuracy:
        missed.append(f"accuracy {metrics['accuracy']:.4f} < {min_accuracy}")
    for tag, part in (metrics.get("per_source") or {}).items():
        if min_source is not None and part["n"] >= min_images and part["accuracy"] < min_source:
            missed.append(f"source {tag}: accuracy {part['accuracy']:.4f} < {min_source} "
                          f"({part['n']} images)")  # fmt: skip
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 bad input, 3 below a bar)."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (EvaluationError, DatasetError) as exc:
        print(f"nothotdog-eval: error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise EvaluationError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.batch_size < 1:
        raise EvaluationError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.data_dir.is_dir():
        raise EvaluationError(f"data folder {args.data_dir} does not exist")
    model = load_predictor(args.model, args.runtime)
    threshold = model.threshold if args.threshold is None else args.threshold
    examples = list_examples(args.data_dir, model.labels)
    if args.sources:
        wanted = set(args.sources.split(","))
        examples = [e for e in examples if e.source in wanted]
        if not examples:
            raise EvaluationError(f"no photo in {args.data_dir} has a source in {sorted(wanted)}")
    extra = sorted(p.name for p in args.data_dir.iterdir()
                   if p.is_dir() and not p.name.startswith(".") and p.name not in model.labels)
    if extra:
        _note(f"ignoring folders that are not model labels: {extra}")
    probs = predict_examples(model.predict, examples, args.batch_size,
                             progress=not args.no_progress, size=model.input_size)  # fmt: skip
    out = args.out or default_out_dir(args.model, args.data_dir)
    metrics = write_evaluation(out, [e.label for e in examples], probs, examples, model.labels,
                               model.positive_label, threshold, heatmap=model.heatmap)  # fmt: skip
    np.save(out / "probabilities.npy", probs)  # per photo, in the order of files below
    (out / "files.txt").write_text("".join(f"{e.path}\n" for e in examples))
    print(f"{model.kind} model {args.model} on {args.data_dir}:")
    print(format_summary(metrics))
    print(f"wrote {out}")
    if args.stamp:
        stamp(args.model, metrics, args.stamp, args.data_dir)
        print(f"recorded as the {args.stamp} metrics of {args.model}")
    missed = shortfalls(metrics, args.min_accuracy, args.min_source_accuracy,
                        args.min_source_images)  # fmt: skip
    for line in missed:
        print(f"nothotdog-eval: below the bar: {line}", file=sys.stderr)
    return BELOW_BAR if missed else 0


# --- the report -------------------------------------------------------------------------------


def write_evaluation(
    out_dir: str | Path, y_true: Sequence[int] | np.ndarray, probs: np.ndarray,
    examples: Sequence[Example], labels: Sequence[str], positive_label: str, threshold: float,
    history: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    heatmap: HeatmapFn | None = None,
) -> dict[str, object]:  # fmt: skip
    """Compute the metrics (overall and per source tag), write ``metrics.json`` and the plots
    into ``out_dir`` (the training curves only given ``history``; the worst mistakes with their
    heatmaps given ``heatmap``), and return exactly what ``metrics.json`` holds."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(labels)
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    metrics = compute_metrics(
        y, p, labels, positive_label, threshold, sources=[e.source for e in examples]
    )
    (out / layout.METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    pos = labels.index(positive_label)
    plot_confusion_matrix(metrics["confusion_matrix"], labels, out / layout.CONFUSION_PNG)
    plot_roc(y == pos, p[:, pos], out / layout.ROC_PNG, positive_label, threshold)
    plot_worst_mistakes(examples, p, labels, positive_label, threshold, out / layout.MISTAKES_PNG,
                        WORST_MISTAKES_SHOWN, heatmap=heatmap)  # fmt: skip
    if history is not None:
        plot_history(history, out / layout.HISTORY_PNG)
    return metrics


def _cell(value: object) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_summary(metrics: Mapping[str, object]) -> str:
    """A short plain-text table: the overall line, then one line per source tag; ``-`` marks a
    figure that is undefined for that group (e.g. recall with no positive example)."""
    rows = [("overall", metrics), *sorted(dict(metrics.get("per_source") or {}).items())]
    width = max(len("source"), *(len(name) for name, _ in rows))
    header = f"{'source':<{width}}  {'n':>6}  {'accuracy':>8}  {'precision':>9}  {'recall':>6}"
    lines = [header, *(f"{name:<{width}}  {m['n']:>6}  {_cell(m['accuracy']):>8}  "
                       f"{_cell(m['precision']):>9}  {_cell(m['recall']):>6}" for name, m in rows)]
    extras = [f"positive label {metrics.get('positive_label', '?')}",
              f"threshold {metrics['threshold']:.4g}"]
    for name, key in (("balanced accuracy", "balanced_accuracy"), ("ROC-AUC", "roc_auc"),
                      ("log loss", "log_loss"), ("ECE", "ece")):
        extras.append(f"{name} {_cell(metrics.get(key))}")  # fmt: skip
    return "\n".join([*lines, ", ".join(extras)])


if __name__ == "__main__":
    sys.exit(main())
