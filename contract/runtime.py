"""Load an exported ONNX model with its spec: shared by the bot, the CLI, eval, export and bench.

Two runtimes run the same file: onnxruntime, the reference the export's checks use, and
OpenVINO, which reads the ONNX file directly (no second file, no conversion step) and runs
its int8 convolutions several times faster on CPUs with VNNI or AMX (``make bench`` measures
both side by side). ``auto`` takes OpenVINO wherever it loads, onnxruntime otherwise; a file
OpenVINO cannot compile falls back to onnxruntime with one log line. The metadata always
comes from the ONNX file itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import onnxruntime as ort

from nothotdog.contract.spec import FEATURES_NAME, HEATMAP_NAME, INPUT_NAME, OUTPUT_NAME, ModelSpec

log = logging.getLogger(__name__)

Runtime = Literal["auto", "openvino", "onnxruntime"]
RUNTIMES: tuple[Runtime, ...] = ("auto", "openvino", "onnxruntime")
PROVIDERS = ["CPUExecutionProvider"]
OPENVINO_DEVICE = "CPU"
# The outputs a file may have after the probabilities, each at most once, with its rank:
# heatmap [batch, height, width] (/why), features [batch, channels] (/teach).
OPTIONAL_OUTPUTS = {HEATMAP_NAME: 3, FEATURES_NAME: 2}


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable or does not follow the contract."""


class ModelMissing(ModelLoadError):
    """No file at the model's path: its own message names the fixes, so callers that add
    advice for a broken model can tell the two apart by type."""


@dataclass(frozen=True)
class Port:
    """One input or output of the graph: name, element type (numpy's name) and shape, with
    None or a name for dimensions the file leaves open."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]


class Engine(Protocol):
    """What a runtime offers: the file's ports and metadata, and a run by output names."""

    name: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    metadata: dict[str, str]

    def run(self, names: Sequence[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


def session_options(intra_op_threads: int = 0) -> object:
    """The bot's onnxruntime settings, in one place so that benchmarks which time something
    else (bench.floor's GEMMs) run it exactly as the bot runs its model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    return options


_ORT_TYPES = {"tensor(uint8)": "uint8", "tensor(float)": "float32", "tensor(float16)": "float16"}


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.session = ort.InferenceSession(str(path), session_options(threads),
                                            providers=PROVIDERS)  # fmt: skip
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.inputs, self.outputs = (
            tuple(Port(p.name, _ORT_TYPES.get(p.type, p.type), tuple(p.shape)) for p in ports)
            for ports in (self.session.get_inputs(), self.session.get_outputs())
        )

    def run(self, names: Sequence[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(list(names), feed)


class OpenVinoEngine:
    """OpenVINO's CPU plugin on the ONNX file. Float parts (pooling, head) stay float32
    (``INFERENCE_PRECISION_HINT``): on bfloat16 CPUs OpenVINO would otherwise run them in
    bfloat16, which moved probabilities by about 1e-3 for no measurable speed. One infer
    request per calling thread: a request holds its outputs until the next call."""

    name = "openvino"

    def __init__(self, path: Path, threads: int = 0) -> None:
        import openvino as ov  # here, not at the top: a missing OpenVINO falls back, not fails

        core = ov.Core()
        model = core.read_model(str(path))
        info = model.get_rt_info()  # the ONNX metadata_props are under "framework"
        framework = info["framework"] if "framework" in info else {}  # noqa: SIM401 (no .get)
        self.metadata = {key: value.astype(str) for key, value in framework.items()}
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY",
                                     "INFERENCE_PRECISION_HINT": "f32"}  # fmt: skip
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(model, OPENVINO_DEVICE, config)
        self.inputs, self.outputs = (
            tuple(Port(_contract_name(p), p.get_element_type().to_dtype().name,
                       tuple(d.get_length() if d.is_static else None
                             for d in p.get_partial_shape()))
                  for p in ports)
            for ports in (self.compiled.inputs, self.compiled.outputs)
        )  # fmt: skip
        self._local = threading.local()

    def run(self, names: Sequence[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer(feed)
        return [request.get_tensor(name).data.copy() for name in names]


@dataclass
class OnnxModel:
    """A model file on one runtime, plus what its metadata says about labels and threshold."""

    engine: Engine
    spec: ModelSpec
    path: Path
    output_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.output_names = tuple(p.name for p in self.engine.outputs)

    @property
    def runtime(self) -> str:
        return self.engine.name

    @property
    def has_heatmap(self) -> bool:
        """Whether the file can say where it saw the positive class (``/why``)."""
        return HEATMAP_NAME in self.output_names

    @property
    def has_features(self) -> bool:
        """Whether the file gives the pooled features a chat's own labels compare (``/teach``)."""
        return FEATURES_NAME in self.output_names

    def predict(self, images: np.ndarray) -> np.ndarray:
        """``uint8 [n, size, size, 3]`` RGB in, ``float32 [n, classes]`` probabilities out.

        Asks for the probabilities alone, so a file with a heatmap costs the verdict nothing
        beyond what the graph computes anyway.
        """
        feed = {INPUT_NAME: np.ascontiguousarray(images, np.uint8)}
        (probs,) = self.engine.run([self.output_names[0]], feed)
        return probs

    def explain(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and ``float32 [n, h, w]`` heatmaps (see contract.heatmap) in one run."""
        return self._with(HEATMAP_NAME, images)

    def features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and ``float32 [n, channels]`` features in one run."""
        return self._with(FEATURES_NAME, images)

    def _with(self, output: str, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if output not in self.output_names:
            raise ModelLoadError(f"{self.path} has no {output!r} output")
        feed = {INPUT_NAME: np.ascontiguousarray(images, np.uint8)}
        probs, extra = self.engine.run([self.output_names[0], output], feed)
        return probs, extra


def _contract_name(port: object) -> str:
    """An OpenVINO port's name as the contract spells it. A tensor may carry several names
    (an output read through an Identity, as the features are, keeps its producer's name
    too), and OpenVINO's ``get_any_name`` may return either."""
    names = port.get_names()  # type: ignore[attr-defined]
    known = (INPUT_NAME, OUTPUT_NAME, HEATMAP_NAME, FEATURES_NAME)
    return next((name for name in known if name in names), port.get_any_name())  # type: ignore[attr-defined]


def openvino_installed() -> bool:
    try:
        import openvino  # noqa: F401  (only asks whether it is there)
    except ImportError:
        return False
    return True


def open_engine(path: str | Path, threads: int = 0, runtime: Runtime = "auto") -> Engine:
    """The file on ``runtime``; ``auto`` means OpenVINO when it is installed. OpenVINO that
    is missing or cannot compile the file is reported in one line, and onnxruntime runs it."""
    path = Path(path)
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if runtime == "openvino" or (runtime == "auto" and openvino_installed()):
        try:
            return OpenVinoEngine(path, threads)
        except ImportError:
            log.warning("RUNTIME=openvino, but OpenVINO is not installed (pip install "
                        "openvino): running %s on onnxruntime", path.name)  # fmt: skip
        except Exception as exc:  # OpenVINO raises its own untyped errors
            first_line = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            log.warning("OpenVINO cannot run %s (%s): running it on onnxruntime", path.name,
                        first_line)  # fmt: skip
    return OnnxRuntimeEngine(path, threads)


def load_onnx(path: str | Path, intra_op_threads: int = 0, runtime: Runtime = "auto") -> OnnxModel:
    path = Path(path)
    if not path.is_file():
        raise ModelMissing(f"model file {path} does not exist")
    try:
        engine = open_engine(path, intra_op_threads, runtime)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(f"cannot load {path}: {exc}") from exc
    try:
        spec = ModelSpec.from_metadata(engine.metadata)
    except (ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path} has bad metadata: {exc}") from exc
    inputs, outputs = engine.inputs, engine.outputs
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].dtype != "uint8":
        raise ModelLoadError(f"{path} must take one uint8 input named {INPUT_NAME!r}")
    shape = inputs[0].shape
    if len(shape) != 4 or list(shape[1:]) != [spec.input_size, spec.input_size, 3]:
        raise ModelLoadError(
            f"{path} input shape {list(shape)} is not [batch, {spec.input_size}, "
            f"{spec.input_size}, 3]"
        )
    if not outputs or outputs[0].shape[-1] != len(spec.labels):
        raise ModelLoadError(f"{path} must have a first output with {len(spec.labels)} columns")
    names = [port.name for port in outputs[1:]]
    for port in outputs[1:]:
        rank = OPTIONAL_OUTPUTS.get(port.name)
        if rank is None or len(port.shape) != rank or names.count(port.name) > 1:
            allowed = ", ".join(f"{name!r} (rank {r})" for name, r in OPTIONAL_OUTPUTS.items())
            raise ModelLoadError(
                f"{path}'s output {port.name!r} {list(port.shape)} is not one of the outputs "
                f"allowed after the first, each once: {allowed}"
            )
    return OnnxModel(engine=engine, spec=spec, path=path)
