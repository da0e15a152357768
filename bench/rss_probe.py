"""``python -m bench.rss_probe KIND MODEL IMAGE``: load one model, classify one image, report.

Run in a fresh interpreter by bench.inference, so the peak RSS (VmHWM) it prints is what that
model costs on its own: interpreter, libraries, weights and one inference. ``onnx`` goes
through the bot's own path (bot.classifier: load_model, decode, predict) and must not import
TensorFlow; ``keras`` loads the .keras file and calls ``predict``, the baseline.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def probe(kind: str, model_path: Path, image_path: Path) -> dict[str, object]:
    started = time.perf_counter()
    data = image_path.read_bytes()
    if kind == "onnx":
        from nothotdog.bot.classifier import decode, load_model, predict

        model = load_model(model_path)
        verdict = predict(model, [decode(model, data)])[0]
        answer = f"{verdict.label} {verdict.probability:.3f}"
    elif kind == "keras":
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        import nothotdog.training.model  # noqa: F401  registers VGGPreprocess
        from nothotdog.contract import decode_image

        model = keras.saving.load_model(model_path, compile=False)
        probs = model.predict(decode_image(data)[None], verbose=0)[0]
        answer = f"p={[round(float(p), 3) for p in probs]}"
    else:
        raise SystemExit(f"unknown kind {kind!r}: onnx or keras")
    from bench.common import peak_rss_mb

    return {
        "kind": kind,
        "model": str(model_path),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "keras_imported": "keras" in sys.modules,
        "answer": answer,
        "seconds": round(time.perf_counter() - started, 2),
    }


if __name__ == "__main__":
    kind, model, image = sys.argv[1:4]
    print(json.dumps(probe(kind, Path(model), Path(image))))
