"""Load an exported ONNX model with its spec: shared by the bot, the CLI, eval, export and bench."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.spec import INPUT_NAME, ModelSpec


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable or does not follow the contract."""


@dataclass
class OnnxModel:
    """An onnxruntime session plus what its metadata says about labels and threshold."""

    session: object  # onnxruntime.InferenceSession, imported lazily
    spec: ModelSpec
    path: Path

    def predict(self, images: np.ndarray) -> np.ndarray:
        """``uint8 [n, size, size, 3]`` RGB in, ``float32 [n, classes]`` probabilities out."""
        (probs,) = self.session.run(None, {INPUT_NAME: np.ascontiguousarray(images, np.uint8)})
        return probs


PROVIDERS = ["CPUExecutionProvider"]


def session_options(intra_op_threads: int = 0) -> object:
    """The bot's onnxruntime settings, in one place so that benchmarks which time something
    else (bench.floor's GEMMs) run it exactly as the bot runs its model."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    return options


def load_onnx(path: str | Path, intra_op_threads: int = 0) -> OnnxModel:
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    options = session_options(intra_op_threads)
    try:
        session = ort.InferenceSession(str(path), options, providers=PROVIDERS)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(f"cannot load {path}: {exc}") from exc
    meta = session.get_modelmeta().custom_metadata_map
    try:
        spec = ModelSpec.from_metadata(meta)
    except (ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path} has bad metadata: {exc}") from exc
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].type != "tensor(uint8)":
        raise ModelLoadError(f"{path} must take one uint8 input named {INPUT_NAME!r}")
    shape = inputs[0].shape
    if len(shape) != 4 or list(shape[1:]) != [spec.input_size, spec.input_size, 3]:
        raise ModelLoadError(
            f"{path} input shape {shape} is not [batch, {spec.input_size}, {spec.input_size}, 3]"
        )
    if len(outputs) != 1 or outputs[0].shape[-1] != len(spec.labels):
        raise ModelLoadError(f"{path} must have one output with {len(spec.labels)} columns")
    return OnnxModel(session=session, spec=spec, path=path)
