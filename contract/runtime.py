"""Load an exported ONNX model with its spec: shared by the bot, the CLI, eval, export and bench."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime as ort

from nothotdog.contract.spec import HEATMAP_NAME, INPUT_NAME, ModelSpec


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable or does not follow the contract."""


class ModelMissing(ModelLoadError):
    """No file at the model's path: its own message names the fixes, so callers that add
    advice for a broken model can tell the two apart by type."""


@dataclass
class OnnxModel:
    """An onnxruntime session plus what its metadata says about labels and threshold."""

    session: ort.InferenceSession
    spec: ModelSpec
    path: Path

    @cached_property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.session.get_outputs())

    @property
    def has_heatmap(self) -> bool:
        """Whether the file can say where it saw the positive class (``/why``)."""
        return HEATMAP_NAME in self.output_names

    def predict(self, images: np.ndarray) -> np.ndarray:
        """``uint8 [n, size, size, 3]`` RGB in, ``float32 [n, classes]`` probabilities out.

        Asks for the probabilities alone, so a file with a heatmap costs the verdict nothing
        beyond what the graph computes anyway.
        """
        feed = {INPUT_NAME: np.ascontiguousarray(images, np.uint8)}
        (probs,) = self.session.run([self.output_names[0]], feed)
        return probs

    def explain(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and ``float32 [n, h, w]`` heatmaps (see contract.heatmap) in one run."""
        if not self.has_heatmap:
            raise ModelLoadError(f"{self.path} has no {HEATMAP_NAME!r} output")
        feed = {INPUT_NAME: np.ascontiguousarray(images, np.uint8)}
        probs, heatmaps = self.session.run([self.output_names[0], HEATMAP_NAME], feed)
        return probs, heatmaps


PROVIDERS = ["CPUExecutionProvider"]


def session_options(intra_op_threads: int = 0) -> object:
    """The bot's onnxruntime settings, in one place so that benchmarks which time something
    else (bench.floor's GEMMs) run it exactly as the bot runs its model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    return options


def load_onnx(path: str | Path, intra_op_threads: int = 0) -> OnnxModel:
    path = Path(path)
    if not path.is_file():
        raise ModelMissing(f"model file {path} does not exist")
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
    if not 1 <= len(outputs) <= 2 or outputs[0].shape[-1] != len(spec.labels):
        raise ModelLoadError(
            f"{path} must have a first output with {len(spec.labels)} columns "
            f"(and at most a {HEATMAP_NAME!r} output besides)"
        )
    if len(outputs) == 2 and (outputs[1].name != HEATMAP_NAME or len(outputs[1].shape) != 3):
        raise ModelLoadError(
            f"{path}'s second output must be {HEATMAP_NAME!r}, [batch, height, width]; "
            f"found {outputs[1].name!r} {outputs[1].shape}"
        )
    return OnnxModel(session=session, spec=spec, path=path)
