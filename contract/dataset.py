"""Labelled image folders: one sub-folder per class, file names ``source__name.ext``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nothotdog.contract.layout import IMAGE_SUFFIXES

SOURCE_SEPARATOR = "__"
NO_SOURCE = "untagged"


class DatasetError(ValueError):
    """The folder cannot be used as labelled data; the message says why."""


@dataclass(frozen=True)
class Example:
    path: Path
    label: int
    source: str


def source_tag(path: str | Path) -> str:
    """The part of the file name before ``__`` (the data set it came from)."""
    name = Path(path).name
    return name.split(SOURCE_SEPARATOR, 1)[0] if SOURCE_SEPARATOR in name else NO_SOURCE


def class_names(root: str | Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise DatasetError(f"{root} needs one sub-folder per class, at least two; found {names}")
    return names


def list_examples(
    root: str | Path, labels: Sequence[str] | None = None, *, every_class: bool = True
) -> list[Example]:
    """All images under ``root/<label>/``, sorted, labelled by the index of ``labels``.
    ``every_class=False`` lets a class be missing or empty: an extra folder (e.g. users'
    votes) adds photos to some classes only."""
    root = Path(root)
    labels = list(labels) if labels is not None else class_names(root)
    examples: list[Example] = []
    for index, label in enumerate(labels):
        folder = root / label
        if not folder.is_dir() and every_class:
            raise DatasetError(f"{root} has no folder for class {label!r}")
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files and every_class:
            raise DatasetError(f"{folder} holds no images")
        examples.extend(Example(p, index, source_tag(p)) for p in files)
    return examples
