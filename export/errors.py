"""The failures the CLI reports as a failed export (exit 1) rather than as a crash."""

from __future__ import annotations

from contract.dataset import DatasetError
from contract.layout import RunFolderError
from contract.runtime import ModelLoadError
from export.convert import ConversionError
from export.parity import ParityError
from export.quantize import QuantizationError

EXPECTED: tuple[type[Exception], ...] = (
    RunFolderError,  # SourceError among them
    DatasetError,
    ConversionError,
    ParityError,
    QuantizationError,
    ModelLoadError,
)
