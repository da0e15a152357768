"""One photo, from "a file to judge" to an outcome: the line, the download, the classifier.

In order: a place and the file's bytes, first come first served (``bot.line``); the
download, into one buffer (``bot.download``); the decode, priced from the header, in decode
threads; one onnxruntime call in the inference threads; for ``/why`` the heatmap drawn over
the photo (``bot.classifier``). Handlers pass a ``Photo`` and get an ``Outcome``
(``bot.outcomes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from telegram.error import BadRequest

from nothotdog.bot.classifier import (
    PICTURE_SIDE,
    draw_cost,
    draw_jpeg,
    predict,
    predict_with_features,
    predict_with_heatmap,
)
from nothotdog.bot.download import Downloader, FileLocator, FileTooLarge, download_cost
from nothotdog.bot.line import Admission, Busy, Lease
from nothotdog.bot.outcomes import Judged, Outcome, Photo, Refusal, Refused
from nothotdog.bot.settings import Settings
from nothotdog.contract import ImageDecodeError, ImageTooLarge, ModelSpec, OpenedImage
from nothotdog.contract.imaging import Buffer, finish_decode, open_image
from nothotdog.contract.layout import MB
from nothotdog.contract.runtime import OnnxModel

T = TypeVar("T")

# A decode is "heavy" past either of these: a big file (libjpeg reads every byte of a 10 MB
# JPEG even at 1/8 scale) or many pixels. Heavy decodes may not take the last decode thread,
# so a 40 MP PNG never makes a 320 px photo wait.
HEAVY_FILE_BYTES = 1 * MB
HEAVY_DECODE_BYTES = 8 * MB


class Pipeline:
    """The one object every photo goes through, from a file to judge to its outcome; one
    model, one line, an inference pool and a decode pool, shared by all chats."""

    def __init__(self, model: OnnxModel, settings: Settings, files: FileLocator) -> None:
        self.model = model
        self.max_file_bytes = settings.max_file_mb * MB
        self.admission = Admission(
            settings.queue_size, settings.memory_budget_mb * MB, settings.max_wait_s
        )
        self.download = Downloader(files, settings.request_timeout)
        self._infer = ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="infer")
        self._decoders = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
        # Heavy decodes leave one decode thread free (with only one, they share it).
        self._heavy = asyncio.Semaphore(max(1, settings.decode_threads - 1))
        self.classified = 0  # photos that reached the model: for tests and benchmarks

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    async def judge(self, photo: Photo, *, picture: bool = False, features: bool = False
                    ) -> Outcome:  # fmt: skip
        """The verdict on ``photo`` (with ``picture``, also the photo with its heatmap drawn
        over it, in ``Judged.picture``; with ``features``, the model's features in
        ``Judged.features``), or why there is none."""
        started = time.perf_counter()
        from_preview = False
        if photo.size and photo.size > self.max_file_bytes:
            if photo.preview is None:
                return Refused(Refusal.TOO_LARGE, size=photo.size)
            photo, from_preview = photo.preview, True
        declared = self.max_file_bytes if photo.size is None else photo.size
        try:
            async with self.admission.place(download_cost(declared)) as lease:
                admitted = time.perf_counter()
                judged = await self._admitted(photo, lease, declared, picture=picture,
                                              features=features)  # fmt: skip
        except Busy as exc:
            return Refused(Refusal.BUSY, detail=str(exc))
        except ImageDecodeError as exc:
            return Refused(Refusal.UNREADABLE, detail=str(exc))
        except FileTooLarge as exc:
            return Refused(Refusal.TOO_LARGE, size=exc.size)
        except BadRequest as exc:
            # Telegram refuses getFile over its 20 MB with a 400 whose only mark is its text.
            if "too big" not in str(exc).lower():
                raise
            return Refused(Refusal.TOO_LARGE)
        return replace(judged, from_preview=from_preview, started=started,
                       wait_s=admitted - started)  # fmt: skip

    async def _admitted(self, photo: Photo, lease: Lease, declared: int, *, picture: bool,
                        features: bool = False) -> Judged:  # fmt: skip
        """Download, decode, infer (and draw) one admitted photo. The file lives only until
        its last decode: one copy, within ``lease``."""
        t0 = time.perf_counter()
        data: bytearray | None = None
        try:
            data = await self._fetch(photo, lease, declared)
            nbytes, t1 = len(data), time.perf_counter()
            size = self.spec.input_size
            image = await self._decode(data, size, functools.partial(finish_decode, size=size),
                                       held=lease.nbytes)  # fmt: skip
            t2 = time.perf_counter()
            jpeg = vector = None
            self.classified += 1
            if picture:
                verdict, heatmap = await self._in_worker(predict_with_heatmap, self.model, image)
                jpeg = await self._decode(
                    data, PICTURE_SIDE, functools.partial(draw_jpeg, heatmap=heatmap),
                    held=lease.nbytes, price=draw_cost,
                )
            else:
                data = None
                lease.release()  # decoded: the file's bytes go back before inference
                if features:
                    verdict, vector = await self._in_worker(predict_with_features, self.model,
                                                            image)  # fmt: skip
                else:
                    (verdict,) = await self._in_worker(predict, self.model, [image])
            t3 = time.perf_counter()
        finally:
            data = None  # freed now, not when a traceback that saw it is dropped
        return Judged(verdict, nbytes=nbytes, download_s=t1 - t0, decode_s=t2 - t1,
                      infer_s=t3 - t2, picture=jpeg, features=vector)  # fmt: skip

    async def _fetch(self, photo: Photo, lease: Lease, declared: int) -> bytearray:
        """The file's bytes, within ``lease`` (admitted for ``declared`` bytes, grown to
        getFile's size if that is bigger, or Busy)."""
        path, size = await self.download.locate(photo.file_id)
        limit = declared if size is None else size
        if limit > self.max_file_bytes:
            raise FileTooLarge(limit)
        if not lease.grow(download_cost(limit)):
            raise Busy(f"the file has {limit} bytes, more than declared, and no room")
        return await self.download.fetch(path, limit)

    async def _decode(
        self,
        data: Buffer,
        size: int,
        finish: Callable[[OpenedImage], T],
        *,
        held: int,
        price: Callable[[OpenedImage], int] | None = None,
    ) -> T:
        """Open ``data`` for ``size`` (the JPEG draft scale), price it (default: the decode's
        own cost) and run ``finish`` in a decode thread once the budget has room; ``finish``
        closes the opened image. An image that could never fit beside the ``held`` bytes is
        refused (ImageTooLarge) before a pixel is decoded."""
        loop = asyncio.get_running_loop()
        opened: OpenedImage | None = await loop.run_in_executor(
            self._decoders, open_image, data, size
        )
        assert opened is not None
        try:
            cost = opened.decode_cost if price is None else price(opened)
            if cost > self.admission.total - held:
                raise ImageTooLarge(
                    f"the image is too large ({opened.width}x{opened.height} pixels)"
                )
            heavy = cost > HEAVY_DECODE_BYTES or len(data) > HEAVY_FILE_BYTES
            # The lane first: a heavy decode waiting for its turn holds no budget meanwhile.
            async with self._heavy if heavy else contextlib.nullcontext():
                with await self.admission.for_decode(cost):
                    job = loop.run_in_executor(self._decoders, finish, opened)
                    opened = None  # the decode thread owns it now, and closes it
                    return await job
        finally:
            if opened is not None:
                opened.close()

    async def _in_worker(self, fn: Callable[..., T], *args: object) -> T:
        """Model work in the inference threads: never on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._infer, fn, *args)

    async def close(self) -> None:
        self._infer.shutdown(wait=False, cancel_futures=True)
        self._decoders.shutdown(wait=False, cancel_futures=True)
        await self.download.close()
