"""The failures the CLI reports as a failed export (exit 1) rather than as a crash."""

from __future__ import annotations

from nothotdog.contract.dataset import DatasetError
from nothotdog.contract.layout import RunFolderError
from nothotdog.contract.runtime import ModelLoadError
from nothotdog.export.convert import ConversionError
from nothotdog.export.parity import ParityError
from nothotdog.export.quantize import QuantizationError

EXPECTED: tuple[type[Exception], ...] = (
    RunFolderError,  # SourceError among them
    DatasetError,
    ConversionError,
    ParityError,
    QuantizationError,
    ModelLoadError,
)
