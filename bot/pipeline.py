"""One photo, from "a file to judge" to an outcome: admission, download, decode, model, drawing.

No Telegram types: handlers pass a :class:`Photo` and get a :class:`Judged` (the verdict, and
for ``/why`` the picture) or a :class:`Refused` with its reason. In order: a place and the
file's bytes, first come first served (:class:`Admission`); the download, into one buffer
(:func:`fetch`); the decode, priced from the header, in decode threads; one onnxruntime call
per photo in the inference threads (batching measured at most 1.09x the photos per second,
VGG16 fills every core at batch 1, and cost 55 MB of activations per photo); for ``/why`` the
heatmap drawn over the photo. ``nothotdog classify`` and ``why`` run the same functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import io
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import numpy as np
from PIL import Image
from telegram.error import BadRequest, NetworkError, TimedOut

from nothotdog.bot.retry import with_retries
from nothotdog.bot.settings import Settings, shipped_model_path
from nothotdog.contract import ImageDecodeError, ImageTooLarge, ModelSpec, OpenedImage
from nothotdog.contract.heatmap import overlay, overlay_bytes
from nothotdog.contract.imaging import (
    Buffer,
    decode_image,
    decode_picture,
    finish_decode,
    finish_picture,
    open_image,
    picture_bytes,
    picture_size,
)
from nothotdog.contract.layout import MB
from nothotdog.contract.runtime import ModelMissing, OnnxModel, Runtime, load_onnx

T = TypeVar("T")

# The /why picture: longest side sent back (plenty for a phone screen), and the PhotoSize to
# draw on, the smallest with this many pixels on its shorter side (Telegram's 800 px one).
PICTURE_SIDE = 1024
PICTURE_MIN_SIDE = 480
JPEG_QUALITY = 90
# A waiting photo costs only a small record, so the line can be long; it is bounded all the
# same, so that a flood cannot grow it without end.
MAX_WAITING = 2_000
# The expected wait is judged from the pace of the last admissions from the line.
PACE_SAMPLES = 16
# A decode is "heavy" past either of these: a big file (libjpeg reads every byte of a 10 MB
# JPEG even at 1/8 scale) or many pixels. Heavy decodes may not take the last decode thread,
# so a 40 MP PNG never makes a 320 px photo wait.
HEAVY_FILE_BYTES = 1 * MB
HEAVY_DECODE_BYTES = 8 * MB
# What the HTTP stack may hold for one download beyond the file itself: asyncio reads the
# socket up to 256 KiB at a time, anyio queues a read or two, httpcore hands over 64 KiB at a
# time (tracemalloc: 0.6-0.7 MiB for 1 to 20 MB files), plus the request and response.
HTTP_BUFFER_BYTES = 1 * MB
HTTP_OBJECT_BYTES = 64 * 1024


# --- what goes in and what comes out ------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    """A file to judge, as Telegram describes it before anything is downloaded."""

    file_id: str
    size: int | None = None  # as declared; None when Telegram did not say
    preview: Photo | None = None  # Telegram's thumbnail of an image document
    unique_id: str = ""  # the same for every bot and over time (file_id is neither)


@dataclass(frozen=True)
class Verdict:
    label: str
    probability: float  # of ``label``, not necessarily of the positive class
    is_positive: bool
    p_positive: float  # P(hotdog), whatever the label: what the threshold is compared with
    probabilities: tuple[float, ...] = ()  # every label's, in the spec's label order


@dataclass(frozen=True)
class Judged:
    verdict: Verdict
    from_preview: bool = False  # judged from Telegram's preview of a file over MAX_FILE_MB
    nbytes: int = 0  # the file's size
    wait_s: float = 0.0  # in line for a place and memory
    download_s: float = 0.0
    decode_s: float = 0.0
    infer_s: float = 0.0
    started: float = 0.0  # perf_counter when the photo arrived, waiting in line included
    picture: bytes | None = None  # /why: the photo with its heatmap, as a JPEG


class Refusal(enum.StrEnum):
    BUSY = "busy"  # the line was full, or the wait would have been too long
    UNREADABLE = "unreadable"  # not an image, damaged, or too many pixels
    TOO_LARGE = "too_large"  # over MAX_FILE_MB (or Telegram's 20 MB) with no preview


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    detail: str = ""  # unreadable: what is wrong, in words safe to show a user
    size: int | None = None  # too large: the file's size, when known


Outcome = Judged | Refused


class Busy(Exception):
    """No room for a photo in time; the message says why (for the log)."""


class FileTooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(f"the file has {size} bytes")
        self.size = size


# --- the model, shared with the command line ----------------------------------------------


def load_model(
    path: str | Path,
    *,
    threshold: float | None = None,
    onnx_threads: int = 0,
    runtime: Runtime = "auto",
) -> OnnxModel:
    """Load and check the model; ``threshold`` overrides the one in its metadata."""
    path = Path(path)
    if not path.is_file():
        raise ModelMissing(missing_model(path))
    model = load_onnx(path, intra_op_threads=onnx_threads, runtime=runtime)
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
    return OnnxModel(engine=model.engine, spec=replace(model.spec, threshold=threshold),
                     path=model.path)  # fmt: skip


def verdict_from(spec: ModelSpec, row: np.ndarray) -> Verdict:
    """One row of probabilities as a verdict (the contract's decision rule)."""
    label, p = spec.verdict(row)
    return Verdict(label, p, is_positive=label == spec.positive_label,
                   p_positive=float(row[spec.positive_index]),
                   probabilities=tuple(float(x) for x in row))  # fmt: skip


def decode(model: OnnxModel, data: Buffer) -> np.ndarray:
    """The model input; contract.ImageDecodeError (safe to show a user) for unusable bytes."""
    return decode_image(data, size=model.spec.input_size)


def predict(model: OnnxModel, images: Sequence[np.ndarray]) -> list[Verdict]:
    """One onnxruntime call for all of ``images``."""
    return [verdict_from(model.spec, row) for row in model.predict(np.stack(images))]


def draw_jpeg(opened: OpenedImage, heatmap: np.ndarray, max_side: int = PICTURE_SIDE) -> bytes:
    """The opened photo (opened for ``max_side``) with ``heatmap`` over it, as a JPEG (Telegram
    recompresses photos anyway); closes ``opened``."""
    buffer = io.BytesIO()
    overlay(finish_picture(opened, max_side), heatmap).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def draw_bytes(opened: OpenedImage, max_side: int = PICTURE_SIDE) -> int:
    """What :func:`draw_jpeg` holds at its peak: the decode, or else the picture, the drawing
    and the JPEG (at most 3 bytes a pixel), whichever is more."""
    long, short = sorted(picture_size(opened, max_side), reverse=True)
    drawing = 4 * long * short + overlay_bytes(long, short) + 3 * long * short
    return max(picture_bytes(opened, max_side), drawing)


def explain(model: OnnxModel, data: bytes, max_side: int = PICTURE_SIDE
            ) -> tuple[Verdict, Image.Image]:  # fmt: skip
    """The verdict and the photo with its heatmap, in one go (``nothotdog why``)."""
    probs, heatmaps = model.explain(decode(model, data)[None])
    return verdict_from(model.spec, probs[0]), overlay(decode_picture(data, max_side), heatmaps[0])


# --- admission: places and bytes, first come first served ---------------------------------


def download_bytes(file_size: int) -> int:
    """Memory one download takes at its peak: the file and the HTTP stack's buffers."""
    return file_size + min(file_size, HTTP_BUFFER_BYTES) + HTTP_OBJECT_BYTES


@dataclass
class _Waiter:
    nbytes: int
    future: asyncio.Future[None]


class Admission:
    """QUEUE_SIZE places and a byte budget for pictures in flight; a fair line for the rest.

    A photo holds a place from admission to verdict, and its file's bytes from admission until
    its decode ends. Files may take three quarters of the budget; the rest is kept so that
    their decodes find room, and a decode waits for running decodes when it does not fit.
    Every byte the bot holds for pictures is counted here, so memory is bounded by the budget,
    and waiting in line holds none of it. Everything runs on the event loop: no locks.
    """

    def __init__(self, places: int, total: int, max_wait_s: float) -> None:
        if total < 1 or places < 1:
            raise ValueError("places and the budget must be positive")
        self.places, self.total, self.max_wait_s = places, total, max_wait_s
        self.files_limit = total - total // 4
        self.used = self.peak = 0  # bytes held now, and the most ever held
        self.in_flight = self.peak_in_flight = 0  # places held now, and the most ever held
        self._decoding = 0
        self._line: deque[_Waiter] = deque()
        self._decode_waiters: list[asyncio.Future[None]] = []
        self._paced: deque[float] = deque(maxlen=PACE_SAMPLES)  # when waiters were admitted

    @property
    def waiting(self) -> int:
        return len(self._line)

    def expected_wait(self, position: int) -> float | None:
        """Seconds until the ``position``-th in line is admitted, at the line's recent pace;
        None while too few have gone through the line to tell."""
        if len(self._paced) < 4:
            return None
        return position * (self._paced[-1] - self._paced[0]) / (len(self._paced) - 1)

    @contextlib.asynccontextmanager
    async def place(self, nbytes: int) -> AsyncIterator[Lease]:
        """A place and ``nbytes`` for a file, in turn; Busy when the line is full or the wait
        would pass ``max_wait_s``. The place is held until the block ends; the bytes until
        the lease is released (after the decode)."""
        lease = await self._admit(nbytes)
        try:
            yield lease
        finally:
            lease.release()
            self.in_flight -= 1
            self._wake()

    async def _admit(self, nbytes: int) -> Lease:
        if not self._line and self._fits(nbytes):
            return self._take(nbytes)
        if len(self._line) >= MAX_WAITING:
            raise Busy(f"{len(self._line)} photos are waiting already")
        expected = self.expected_wait(len(self._line) + 1)
        if expected is not None and expected > self.max_wait_s:
            raise Busy(f"the expected wait is {expected:.0f}s")
        loop = asyncio.get_running_loop()
        waiter = _Waiter(nbytes, loop.create_future())
        self._line.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait_s):
                await asyncio.shield(waiter.future)  # a timeout must not cancel the admission
        except BaseException as exc:  # the wait timed out, or the update was cancelled
            if waiter.future.done():  # admitted in the same instant: give it all back
                self.in_flight -= 1
                self.used -= nbytes
            else:
                self._line.remove(waiter)
            self._wake()  # the next in line may fit where this one did not
            if isinstance(exc, TimeoutError):
                raise Busy(f"not admitted within {self.max_wait_s:.0f}s") from None
            raise
        return Lease(self, nbytes, decode=False)

    def _fits(self, nbytes: int) -> bool:
        return self.in_flight < self.places and self.used + nbytes <= self.files_limit

    def _take(self, nbytes: int) -> Lease:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self._hold(nbytes)
        return Lease(self, nbytes, decode=False)

    def _hold(self, nbytes: int) -> None:
        self.used += nbytes
        self.peak = max(self.peak, self.used)

    def _wake(self) -> None:
        """Admit from the head of the line while the head fits (first come, first served: a
        big file at the head is not overtaken), then let waiting decodes look again."""
        while self._line and self._fits(self._line[0].nbytes):
            waiter = self._line.popleft()
            self._take(waiter.nbytes)
            self._paced.append(waiter.future.get_loop().time())
            waiter.future.set_result(None)
        if not self._line:
            self._paced.clear()  # a pace is only the line's while it lasts: not an old one's
        waiters, self._decode_waiters = self._decode_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def for_decode(self, nbytes: int) -> Lease:
        """``nbytes`` for a decode, after running decodes have made room if need be. With no
        decode running, the bytes are held by files that wait for their own decodes: waiting
        could last forever, so that photo is refused (the one case where "busy" does not
        come from the line)."""
        while self.used + nbytes > self.total:
            if self._decoding == 0:
                raise Busy(f"no room to decode: {self.used} of {self.total} bytes are held")
            waiter = asyncio.get_running_loop().create_future()
            self._decode_waiters.append(waiter)
            await waiter
        self._decoding += 1
        self._hold(nbytes)
        return Lease(self, nbytes, decode=True)

    def _grow(self, lease: Lease, nbytes: int) -> bool:
        extra = nbytes - lease.nbytes
        if extra > 0 and self.used + extra > self.files_limit:
            return False
        self._hold(max(extra, 0))
        lease.nbytes = max(nbytes, lease.nbytes)
        return True

    def _release(self, lease: Lease) -> None:
        self.used -= lease.nbytes
        if lease.decode:
            self._decoding -= 1
        self._wake()


class Lease:
    """Bytes held in the budget until released; a context manager releases them on exit."""

    def __init__(self, admission: Admission, nbytes: int, decode: bool) -> None:
        self._admission: Admission | None = admission
        self.nbytes = nbytes
        self.decode = decode

    def grow(self, nbytes: int) -> bool:
        """Hold ``nbytes`` in all (a file turned out bigger than declared); False if no room."""
        assert self._admission is not None, "released"
        return self._admission._grow(self, nbytes)

    def release(self) -> None:
        if self._admission is not None:
            self._admission._release(self)
            self._admission = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --- the pipeline -------------------------------------------------------------------------

# Where a file is: its download URL (or a local path, from a Bot API server in --local mode)
# and its size when known. The bot's is Telegram's getFile; tests may give another.
Locate = Callable[[str], Awaitable[tuple[str, int | None]]]


class Pipeline:
    """The one object every photo goes through, from a file to judge to its outcome; one
    model, one admission line, an inference pool and a decode pool, shared by all chats."""

    def __init__(self, model: OnnxModel, settings: Settings, locate: Locate) -> None:
        self.model = model
        self.locate = locate
        self.max_file_bytes = settings.max_file_mb * MB
        self.admission = Admission(
            settings.queue_size, settings.memory_budget_mb * MB, settings.max_wait_s
        )
        self._infer = ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="infer")
        self._decoders = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
        # Heavy decodes leave one decode thread free (with only one, they share it).
        self._heavy = asyncio.Semaphore(max(1, settings.decode_threads - 1))
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.request_timeout,
                                  connect=min(5.0, settings.request_timeout)),
            # A compressed body could expand past the size we reserved for it.
            headers={"Accept-Encoding": "identity"},
        )  # fmt: skip
        self.classified = 0  # photos that reached the model: for tests and benchmarks

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    async def judge(self, photo: Photo) -> Outcome:
        """The verdict on ``photo``, or why there is none."""
        return await self._run(photo, draw=False)

    async def explain(self, photo: Photo) -> Outcome:
        """The verdict with the photo's heatmap drawn over it (``Judged.picture``)."""
        return await self._run(photo, draw=True)

    async def _run(self, photo: Photo, *, draw: bool) -> Outcome:
        started = time.perf_counter()
        from_preview = False
        if photo.size and photo.size > self.max_file_bytes:
            if photo.preview is None:
                return Refused(Refusal.TOO_LARGE, size=photo.size)
            photo, from_preview = photo.preview, True
        declared = self.max_file_bytes if photo.size is None else photo.size
        try:
            async with self.admission.place(download_bytes(declared)) as lease:
                admitted = time.perf_counter()
                judged = await self._judge(photo, lease, declared, draw=draw)
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

    async def _judge(self, photo: Photo, lease: Lease, declared: int, *, draw: bool) -> Judged:
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
            picture = None
            self.classified += 1
            if draw:
                probs, heatmaps = await self._in_worker(self.model.explain, image[None])
                verdict = verdict_from(self.spec, probs[0])
                picture = await self._decode(
                    data, PICTURE_SIDE, functools.partial(draw_jpeg, heatmap=heatmaps[0]),
                    held=lease.nbytes, price=draw_bytes,
                )
            else:
                data = None
                lease.release()  # decoded: the file's bytes go back before inference
                (verdict,) = await self._in_worker(predict, self.model, [image])
            t3 = time.perf_counter()
        finally:
            data = None  # freed now, not when a traceback that saw it is dropped
        return Judged(verdict, nbytes=nbytes, download_s=t1 - t0, decode_s=t2 - t1,
                      infer_s=t3 - t2, picture=picture)  # fmt: skip

    async def _fetch(self, photo: Photo, lease: Lease, declared: int) -> bytearray:
        """The file's bytes, within ``lease`` (admitted for ``declared`` bytes, grown to
        getFile's size if that is bigger, or Busy)."""
        path, size = await self.locate(photo.file_id)
        limit = declared if size is None else size
        if limit > self.max_file_bytes:
            raise FileTooLarge(limit)
        if not lease.grow(download_bytes(limit)):
            raise Busy(f"the file has {limit} bytes, more than declared, and no room")
        return await with_retries(lambda: fetch(self._http, path, limit), "download")

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
        own price) and run ``finish`` in a decode thread once the budget has room; ``finish``
        closes the opened image. An image that could never fit beside the ``held`` bytes is
        refused (ImageTooLarge) before a pixel is decoded."""
        loop = asyncio.get_running_loop()
        opened: OpenedImage | None = await loop.run_in_executor(
            self._decoders, open_image, data, size
        )
        assert opened is not None
        try:
            cost = opened.decode_bytes if price is None else price(opened)
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
        await self._http.aclose()


# --- download -------------------------------------------------------------------------------


async def fetch(client: httpx.AsyncClient, path: str, limit: int) -> bytearray:
    """A file's bytes, streamed into one buffer of exactly its size (Content-Length).

    python-telegram-bot's ``download_as_bytearray`` holds a file three times over at its peak
    (httpx joins the chunks into ``bytes``, PTB copies them into a ``bytearray``); this holds
    one copy plus one network chunk, and stops reading past ``limit`` (FileTooLarge). Errors
    are PTB's (TimedOut, NetworkError, BadRequest), so the retry layer reads them.
    """
    if not path:
        raise BadRequest("the file has no file_path to download it from")
    if not path.startswith(("http://", "https://")):  # a Bot API server in --local mode
        return _read_local(Path(path), limit)
    buffer: bytearray | None = None
    try:
        async with client.stream("GET", _encoded(path)) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise NetworkError(f"file download failed: HTTP {response.status_code}")
            if response.status_code != 200:
                raise BadRequest(f"file download failed: HTTP {response.status_code}")
            length = response.headers.get("Content-Length")
            size = int(length) if length is not None and length.isdigit() else None
            if size is not None and size > limit:
                raise FileTooLarge(size)
            buffer = bytearray(size if size is not None else limit)
            filled = 0
            async for chunk in response.aiter_bytes():
                end = filled + len(chunk)
                if end > len(buffer):
                    raise FileTooLarge(end)
                buffer[filled:end] = chunk
                filled = end
            if size is None:
                del buffer[filled:]
            elif filled != size:  # h11 raises first; this is the belt to its braces
                raise NetworkError(f"file download ended at {filled} of {size} bytes")
            return buffer
    except httpx.TimeoutException as exc:
        raise TimedOut(f"file download timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise NetworkError(f"httpx.{type(exc).__name__}: {exc}") from exc
    finally:
        buffer = None  # a failed attempt's partial file must not live on in a traceback


def _encoded(url: str) -> str:
    """The URL with its path percent-encoded, as PTB's own File does it."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=quote(parts.path)))


def _read_local(path: Path, limit: int) -> bytearray:
    size = path.stat().st_size
    if size > limit:
        raise FileTooLarge(size)
    buffer = bytearray(size)
    with path.open("rb") as f:
        f.readinto(buffer)
    return buffer
