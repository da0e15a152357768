"""Bytes in, verdict out: the contract's decode, one ONNX model, an inference pool.

No Telegram types here, so the CLI, the bot and the benchmarks share every step from bytes to
label: :meth:`Classifier.decode` then :meth:`Classifier.predict`. The bot's asynchronous path
decodes in threads of their own, never the inference thread, within a byte budget, and runs
one onnxruntime call per photo: batching photos together measured at most 1.09x the photos
per second here (VGG16 fills every core at batch 1) and cost 55 MB of activations per photo.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from nothotdog.bot.budget import Busy, ByteBudget
from nothotdog.bot.settings import Settings, shipped_model_path
from nothotdog.contract import (
    ImageTooLarge,
    ModelSpec,
    OpenedImage,
    decode_image,
    finish_decode,
    open_image,
)
from nothotdog.contract.imaging import Buffer
from nothotdog.contract.layout import MB
from nothotdog.contract.runtime import ModelLoadError, ModelMissing, OnnxModel, load_onnx

__all__ = ["Busy", "Classifier", "ModelLoadError", "ModelMissing", "Verdict", "load_model",
           "with_threshold"]  # fmt: skip

T = TypeVar("T")

# A decode is "heavy" past either of these: a big file (libjpeg reads every byte of a 10 MB
# JPEG even at 1/8 scale) or many pixels. Heavy decodes may not take the last decode thread,
# so a 40 MP PNG never makes a 320 px photo wait.
HEAVY_FILE_BYTES = 1 * MB
HEAVY_DECODE_BYTES = 8 * MB

@dataclass(frozen=True)
class Verdict:
    label: str
    probability: float  # of ``label``, not necessarily of the positive class
    is_positive: bool
    p_positive: float  # P(hotdog), whatever the label: what the threshold is compared with


def verdict_from(spec: ModelSpec, row: np.ndarray) -> Verdict:
    """One row of probabilities as the bot's verdict (the contract's decision rule)."""
    label, p = spec.verdict(row)
    return Verdict(label, p, is_positive=label == spec.positive_label,
                   p_positive=float(row[spec.positive_index]))


def load_model(
    path: str | Path, *, threshold: float | None = None, onnx_threads: int = 0
) -> OnnxModel:
    """Load and check the model; ``threshold`` overrides the one in its metadata."""
    path = Path(path)
    if not path.is_file():
        raise ModelMissing(missing_model(path))
    model = load_onnx(path, intra_op_threads=onnx_threads)
    return model if threshold is None else with_threshold(model, threshold)


def missing_model(path: Path) -> str:
    """Why ``path`` is not there and what fixes it: the shipped model needs no training."""
    shipped = shipped_model_path()
    if path == shipped:
        return (
            f"the model that ships with nothotdog is missing ({path}). Reinstall nothotdog "
            "from your checkout or wheel (pip install --force-reinstall .), or in a checkout "
            "restore it (git checkout models/nothotdog.onnx), or set MODEL_PATH to an exported "
            "nothotdog .onnx file."
        )
    return (
        f"model file {path} does not exist. Fix MODEL_PATH (or --model), or leave it empty to "
        f"use the model that ships with nothotdog ({shipped})."
    )


def with_threshold(model: OnnxModel, threshold: float) -> OnnxModel:
    """The same session, deciding at ``threshold`` instead of the model's own."""
    spec = dataclasses.replace(model.spec, threshold=threshold)
    return OnnxModel(session=model.session, spec=spec, path=model.path)


class Classifier:
    """One model, an inference pool and a decode pool, one bound on photos in flight, one byte
    budget; safe to share across all chats."""

    def __init__(
        self,
        model: OnnxModel,
        *,
        queue_size: int = 64,
        worker_threads: int = 2,
        decode_threads: int = 2,
        budget: ByteBudget | None = None,
    ) -> None:
        self.model = model
        self.queue_size = queue_size
        self.budget = budget or ByteBudget(Settings().memory_budget_mb * MB)
        self._pool = ThreadPoolExecutor(worker_threads, thread_name_prefix="infer")
        self._decoders = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")
        # Heavy decodes leave one decode thread free (with only one, they share it).
        self._heavy = asyncio.Semaphore(max(1, decode_threads - 1))
        self.classified = 0  # photos that reached the model: for tests and benchmarks
        self._in_flight = 0
        self.peak_in_flight = 0  # most photos ever held at once: never above queue_size

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def in_flight(self) -> int:
        """Photos holding a place now, from download to verdict (the metrics' gauge)."""
        return self._in_flight

    # --- the shared, synchronous path (CLI and worker threads) ---------------------------

    def decode(self, data: bytes) -> np.ndarray:
        """Raises contract.ImageDecodeError (safe to show a user) for anything unusable."""
        return decode_image(data, size=self.spec.input_size)

    def predict(self, images: Sequence[np.ndarray]) -> list[Verdict]:
        """One onnxruntime call for the whole batch."""
        probabilities = self.model.predict(np.stack(images))
        return [verdict_from(self.spec, row) for row in probabilities]

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

    async def decode_async(self, data: Buffer, held: int = 0) -> np.ndarray:
        """Decode in a decode thread once the budget has room for it; never blocks the loop.

        ``held``: bytes of the budget the caller already holds for ``data``. An image whose
        decode could never fit beside it is refused (ImageTooLarge), before a pixel is decoded;
        one that does not fit now waits for running decodes, or raises Busy.
        """
        size = self.spec.input_size
        return await self.decode_with(
            data, size, functools.partial(finish_decode, size=size), held=held
        )

    async def decode_with(
        self,
        data: Buffer,
        size: int,
        finish: Callable[[OpenedImage], T],
        *,
        held: int = 0,
        price: Callable[[OpenedImage], int] | None = None,
    ) -> T:
        """:meth:`decode_async` for other work on the pixels (``/why``'s drawing): the image
        is opened for ``size`` (the JPEG draft scale), priced by ``price`` (default: the
        decode's own price), and ``finish`` runs in a decode thread within the budget. It
        must close the opened image."""
        loop = asyncio.get_running_loop()
        opened: OpenedImage | None = await loop.run_in_executor(
            self._decoders, open_image, data, size
        )
        assert opened is not None
        try:
            cost = opened.decode_bytes if price is None else price(opened)
            if cost > self.budget.total - held:
                raise ImageTooLarge(
                    f"the image is too large ({opened.width}x{opened.height} pixels)"
                )
            heavy = cost > HEAVY_DECODE_BYTES or len(data) > HEAVY_FILE_BYTES
            # The lane first: a heavy decode waiting for its turn holds no budget meanwhile.
            async with self._heavy if heavy else contextlib.nullcontext():
                with await self.budget.for_decode(cost):
                    job = loop.run_in_executor(self._decoders, finish, opened)
                    opened = None  # the decode thread owns it now, and closes it
                    return await job
        finally:
            if opened is not None:
                opened.close()

    async def infer(self, image: np.ndarray) -> Verdict:
        """The verdict, from an inference thread: at most ``worker_threads`` run at once, and
        :meth:`slot` has already bounded how many photos can wait for one."""
        self.classified += 1
        (verdict,) = await self.run_in_worker(self.predict, [image])
        return verdict

    async def classify(self, data: Buffer) -> Verdict:
        """Decode, then infer: for callers that hold no budget of their own."""
        return await self.infer(await self.decode_async(data))

    async def run_in_worker(self, fn: Callable[..., T], *args: object) -> T:
        """Model work (verdicts, ``/why``'s heatmap) in the inference threads: it never blocks
        the event loop, and all of it shares their CPU budget."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._decoders.shutdown(wait=False, cancel_futures=True)
