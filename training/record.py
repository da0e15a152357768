"""What a run folder records so a result can be traced and reproduced."""

from __future__ import annotations

import importlib.metadata
import json
import platform
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from nothotdog.contract.dataset import Example

PACKAGES = ("tensorflow", "keras", "numpy", "pillow", "onnx", "tf2onnx", "onnxruntime")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "machine": platform.machine()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_summary(examples: Sequence[Example], labels: Sequence[str]) -> dict:
    by_label = Counter(labels[e.label] for e in examples)
    by_source = Counter(e.source for e in examples)
    return {"n": len(examples), "per_label": dict(by_label), "per_source": dict(by_source)}


def file_list(examples: Sequence[Example], digests: Sequence[str], labels: Sequence[str]):
    return [
        {"path": str(e.path), "label": labels[e.label], "source": e.source, "sha256": d}
        for e, d in zip(examples, digests, strict=True)
    ]


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
