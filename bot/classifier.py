"""Bytes in, verdict out: the contract's decode, one ONNX model, and the micro-batcher.

No Telegram types here, so the CLI, the bot and the benchmarks share every step from bytes to
label: :meth:`Classifier.decode` then :meth:`Classifier.predict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.batcher import BatchStats, Busy, MicroBatcher
from contract import ModelSpec, decode_image
from contract.runtime import ModelLoadError, OnnxModel, load_onnx

__all__ = ["Busy", "Classifier", "ModelLoadError", "Verdict", "load_model", "with_threshold"]

MAKE_MODEL_HINT = (
    "Get one with `make model` (trains and exports it from the data folder; see README "
    "'Training and export'), or set MODEL_PATH to an exported nothotdog .onnx file."
)


@dataclass(frozen=True)
class Verdict:
    label: str
    probability: float  # of ``label``, not necessarily of the positive class
    is_positive: bool


def load_model(
    path: str | Path, *, threshold: float | None = None, onnx_threads: int = 0
) -> OnnxModel:
    """Load and check the model; ``threshold`` overrides the one in its metadata."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist. {MAKE_MODEL_HINT}")
    model = load_onnx(path, intra_op_threads=onnx_threads)
    return model if threshold is None else with_threshold(model, threshold)


def with_threshold(model: OnnxModel, threshold: float) -> OnnxModel:
    """The same session, deciding at ``threshold`` instead of the model's own."""
    spec = dataclasses.replace(model.spec, threshold=threshold)
    return OnnxModel(session=model.session, spec=spec, path=model.path)


class Classifier:
    """One model, one worker pool, one micro-batcher; safe to share across all chats."""

    def __init__(
        self,
        model: OnnxModel,
        *,
        batch_size: int = 8,
        batch_wait_ms: float = 5.0,
        queue_size: int = 64,
        worker_threads: int = 2,
    ) -> None:
        self.model = model
        self.queue_size = queue_size
        self._pool = ThreadPoolExecutor(worker_threads, thread_name_prefix="classify")
        self._batcher: MicroBatcher[np.ndarray, Verdict] = MicroBatcher(
            self.predict,
            executor=self._pool,
            max_batch=batch_size,
            max_wait=batch_wait_ms / 1000.0,
            max_queue=queue_size,
            concurrency=worker_threads,
        )
        self._in_flight = 0
        self.peak_in_flight = 0  # most photos ever held at once: never above queue_size

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def in_flight(self) -> int:
        """Photos holding a place now, from download to verdict (the metrics' gauge)."""
        return self._in_flight

    @property
    def stats(self) -> BatchStats:
        """How many batches formed and how big: for tests and benchmarks."""
        return self._batcher.stats

    # --- the shared, synchronous path (CLI and worker threads) ---------------------------

    def decode(self, data: bytes) -> np.ndarray:
        """Raises contract.ImageDecodeError (safe to show a user) for anything unusable."""
        return decode_image(data, size=self.spec.input_size)

    def predict(self, images: Sequence[np.ndarray]) -> list[Verdict]:
        """One onnxruntime call for the whole batch."""
        probabilities = self.model.predict(np.stack(images))
        positive = self.spec.positive_label
        verdicts = []
        for row in probabilities:
            label, p = self.spec.verdict(row)
            verdicts.append(Verdict(label=label, probability=p, is_positive=label == positive))
        return verdicts

    # --- the asynchronous path (the bot) ---------------------------------------------------

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of ``queue_size`` places from download to verdict, or raise Busy.

        Taken before downloading, so a burst of photos cannot pile up downloads in memory.
        """
        if self._in_flight >= self.queue_size:
            raise Busy(f"{self.queue_size} photos are already being classified")
        self._in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            yield
        finally:
            self._in_flight -= 1

    async def classify(self, data: bytes) -> Verdict:
        """Decode in a worker thread, then join the next batch; never blocks the event loop."""
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(self._pool, self.decode, data)
        return await self._batcher.submit(image)

    async def close(self) -> None:
        await self._batcher.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
