"""The model's own rate: what the bot's model does alone, batch 1, timed in the bench process.

A bot's photos/s moves with the CPU and with whatever else the machine does this minute, so
alone it compares with nothing. As a percentage of the same model's own rate (1000 / its
batch-1 ms per image, same file, same thread settings, measured minutes apart at most) it
says what the bot's machinery costs (downloads, decoding, queueing, replies, the load
generator sharing the CPUs), and that percentage can be compared across machines. bench.load
takes a checkpoint before the first level and after each one, while the bots sit idle, so each
level is bracketed by the two checkpoints around it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import median

WARMUP_CALLS = 2
CHECKPOINT_SECONDS = 2.0
MAX_CALLS = 40


@dataclass
class OwnRate:
    """A session on the bot's model file and the batch-1 times of each checkpoint."""

    model: Any  # contract.runtime.OnnxModel
    images: np.ndarray
    checkpoints: list[list[float]] = field(default_factory=list)  # ms per image

    @classmethod
    def load(cls, path: Path, onnx_threads: int = 0) -> OwnRate:
        """Load as the bot does (contract.runtime.load_onnx, same threads) and warm up."""
        from bench.photos import model_inputs
        from nothotdog.contract.runtime import load_onnx

        own = cls(load_onnx(path, onnx_threads), model_inputs(4, seed=5))
        for i in range(WARMUP_CALLS):
            own.model.predict(own.images[i : i + 1])
        return own

    def checkpoint(self, seconds: float = CHECKPOINT_SECONDS, max_calls: int = MAX_CALLS
                   ) -> list[float]:
        """Batch-1 calls for about ``seconds`` (at least 3, at most ``max_calls``)."""
        times: list[float] = []
        stop_at = time.perf_counter() + seconds
        while len(times) < max_calls and (len(times) < 3 or time.perf_counter() < stop_at):
            x = self.images[len(times) % len(self.images)][None]
            start = time.perf_counter()
            self.model.predict(x)
            times.append((time.perf_counter() - start) * 1000)
        self.checkpoints.append(times)
        return times

    def ms_between(self, first: int, last: int) -> float:
        """Median ms per image over checkpoints ``first`` to ``last`` inclusive."""
        return median([t for times in self.checkpoints[first : last + 1] for t in times])

    def summary(self) -> dict[str, Any]:
        every = [t for times in self.checkpoints for t in times]
        return {
            "checkpoints": [{"calls": len(t), "median_ms": round(median(t), 2)}
                            for t in self.checkpoints],
            "median_ms_per_image": round(median(every), 2),
            "photos_per_s": round(1000 / median(every), 2),
        }


def percent_of(photos_per_s: float, ms_per_image: float) -> float:
    """photos/s as a percentage of a model that takes ``ms_per_image`` per photo alone."""
    return 100.0 * photos_per_s * ms_per_image / 1000.0
