"""What every benchmark shares: timing statistics, tables, JSON results, peak RSS, machine facts.

Kept free of TensorFlow and telegram imports so that a benchmark which must not load them (the
bot-path RSS probe, the decode bench) can import it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MODELS_CACHE = RESULTS / "models"
SHIPPED_MODEL = ROOT / "models" / "nothotdog.onnx"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100), as numpy's default does."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


# The CPU features that decide how fast int8 and float32 GEMMs can run, as /proc/cpuinfo
# spells them: AVX2/AVX-512 (the vector width), VNNI (one-instruction u8 x s8 dot products,
# AVX-512 or the AVX2-width AVX-VNNI), AVX-512 BF16, and AMX (matrix tiles, Intel since
# Sapphire Rapids). Milliseconds from machines that differ here cannot be compared.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "amx_tile", "amx_int8", "amx_bf16")


def machine() -> dict[str, Any]:
    """Where the figures were taken: they mean little without it."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # 1/5/15-minute load average when the results were written: above the core count,
        # other work was competing for the CPUs during the run.
        "load_average": [round(x, 2) for x in load],
    }


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's marketing name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    match = re.search(r"^model name\s*:\s*(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def cpu_flags(cpuinfo: str | None = None) -> dict[str, bool]:
    """Each of CPU_FLAGS: present or not, read at run time (never assumed from the model)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    match = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    present = set(match.group(1).split()) if match else set()
    return {flag: flag in present for flag in CPU_FLAGS}


def describe_cpu(info: dict[str, Any] | None = None) -> str:
    """One line for a table's heading, e.g. 'AMD EPYC, 2 cores; has avx2; lacks amx_int8 ...'."""
    info = info or machine()
    flags = info.get("cpu_flags")
    if not flags:
        return f"{info['cpu']}, {info['cores']} cores; CPU flags not recorded"
    has = [f for f in CPU_FLAGS if flags.get(f)]
    lacks = [f for f in CPU_FLAGS if not flags.get(f)]
    return (f"{info['cpu']}, {info['cores']} cores; has {' '.join(has) or 'none of them'}; "
            f"lacks {' '.join(lacks) or 'none'}")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def now_utc() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A plain-text table; the first column is left-aligned, numbers right-aligned."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    def line(values: Sequence[str]) -> str:
        rest = (v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True))
        return "  ".join([values[0].ljust(widths[0]), *rest])
    out = [title] if title else []
    out += [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def write_result(name: str, payload: dict[str, Any], clock: Stopwatch | None = None) -> Path:
    """bench/results/NAME.json, with the date and the machine: the figures' provenance. With
    the benchmark's ``clock``, its run time is recorded and the file announced."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "date": now_utc(), "machine": machine(), **payload}
    if clock is not None:
        doc["seconds"] = round(clock.seconds, 1)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    if clock is not None:
        print(f"\nwrote {path} ({clock.seconds:.0f}s)")
    return path


def status_mb(key: str, pid: int | None = None) -> float:
    """A memory figure (VmHWM, VmRSS...) of a live process, in MB (10^6 bytes)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+)\s+kB", status, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no {key} in /proc/PID/status")
    return int(match.group(1)) * 1024 / 1e6


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident set size (VmHWM) of a live process, in MB (10^6 bytes)."""
    return status_mb("VmHWM", pid)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a benchmarked subprocess: quiet TensorFlow, project on the path."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def run_module(module: str, *args: str, timeout: float = 600.0) -> subprocess.CompletedProcess:
    """``python -m module args`` in a fresh interpreter, output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )


class Stopwatch:
    """Seconds since creation, for bounding loops and reporting phases."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
