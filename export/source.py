"""What a training run folder says about its model, read without TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nothotdog.contract.layout import MODEL_FILE, RunFacts, RunFolderError, read_run_facts


class SourceError(RunFolderError):
    """The run folder or model path cannot be exported; the message says why."""


@dataclass(frozen=True, kw_only=True)
class TrainedRun(RunFacts):
    """The facts export copies into the ONNX metadata; contract defaults for a bare .keras."""

    model_path: Path
    run_dir: Path | None

    @property
    def name(self) -> str:
        """A short tag for the model version: the run folder, else the file's stem."""
        return self.run_dir.name if self.run_dir is not None else self.model_path.stem


def read_run(path: str | Path) -> TrainedRun:
    """Accept a run folder (model.keras + JSON files) or a bare .keras file."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".keras":
            raise SourceError(f"{path} is not a .keras file")
        return TrainedRun(model_path=path, run_dir=None)
    if not path.is_dir():
        raise SourceError(f"{path} is neither a run folder nor a .keras file")
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise SourceError(f"run folder {path} has no {MODEL_FILE}")
    facts = read_run_facts(path)
    return TrainedRun(model_path=model_path, run_dir=path, **vars(facts))
