"""Peak memory of this process over a block of code, for asserting that memory stays bounded.

Pillow and onnxruntime allocate outside Python's allocator, so tracemalloc alone would miss a
decoded bomb; the kernel's peak resident set size (VmHWM) sees everything. Linux lets a
process reset its own peak by writing "5" to /proc/self/clear_refs (Linux >= 4.0).
"""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MB = 1024 * 1024
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class Peak:
    rss_before: int = 0  # bytes resident when the block started
    rss_peak: int = 0  # highest resident set size during the block
    python_peak: int = 0  # tracemalloc: most bytes Python objects held at once (0: not traced)

    @property
    def rss_growth_mb(self) -> float:
        return (self.rss_peak - self.rss_before) / MB

    @property
    def python_peak_mb(self) -> float:
        return self.python_peak / MB


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def require_peak_rss() -> None:
    """Skip the test where the kernel cannot reset and report the peak RSS."""
    try:
        _status_kb("VmHWM")
        _CLEAR_REFS.write_text("5")  # /proc: kernel state, not a file on disk
    except (OSError, KeyError):
        pytest.skip("needs Linux /proc/self/clear_refs to measure peak memory")


@contextlib.contextmanager
def peak_memory(trace_python: bool = False) -> Iterator[Peak]:
    """Measure the block's peak RSS (and, with ``trace_python``, tracemalloc's peak)."""
    require_peak_rss()
    peak = Peak()
    _CLEAR_REFS.write_text("5")  # VmHWM := current RSS
    peak.rss_before = _status_kb("VmRSS")
    if trace_python:
        tracemalloc.start()
    try:
        yield peak
    finally:
        if trace_python:
            peak.python_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        peak.rss_peak = _status_kb("VmHWM")
