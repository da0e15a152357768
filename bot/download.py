"""A photo's file, from Telegram into one buffer: where it is (getFile), then its bytes.

python-telegram-bot's ``download_as_bytearray`` holds a file three times over at its peak
(httpx joins the chunks into ``bytes``, PTB copies them into a ``bytearray``); :func:`fetch`
holds one copy plus one network chunk, and stops reading past a limit. Its errors are PTB's
(TimedOut, NetworkError, BadRequest), so the one retry layer (``bot.retry``) reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from telegram import Bot
from telegram.error import BadRequest, NetworkError, TimedOut

from nothotdog.bot.retry import with_retries

# What the HTTP stack may hold for one download beyond the file itself: asyncio reads the
# socket up to 256 KiB at a time, anyio queues a read or two, httpcore hands over 64 KiB at a
# time (tracemalloc: 0.6-0.7 MiB for 1 to 20 MB files), plus the request and response.
HTTP_BUFFER_BYTES = 1024 * 1024
HTTP_OBJECT_BYTES = 64 * 1024


class FileTooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(f"the file has {size} bytes")
        self.size = size


def download_cost(file_size: int) -> int:
    """Bytes one download holds at its peak: the file and the HTTP stack's buffers."""
    return file_size + min(file_size, HTTP_BUFFER_BYTES) + HTTP_OBJECT_BYTES


class FileLocator(Protocol):
    """Where a file is: its download URL (or a local path, from a Bot API server in --local
    mode) and its size when known."""

    async def locate(self, file_id: str) -> tuple[str, int | None]: ...


class TelegramFiles:
    """The bot's :class:`FileLocator`: the Bot API's getFile, retried."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def locate(self, file_id: str) -> tuple[str, int | None]:
        file = await with_retries(lambda: self.bot.get_file(file_id), "getFile")
        return str(file.file_path or ""), file.file_size


class Downloader:
    """One HTTP client for every file, and the locator that says where each one is."""

    def __init__(self, files: FileLocator, timeout: float) -> None:
        self.files = files
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            # A compressed body could expand past the size we reserved for it.
            headers={"Accept-Encoding": "identity"},
        )

    async def locate(self, file_id: str) -> tuple[str, int | None]:
        return await self.files.locate(file_id)

    async def fetch(self, path: str, limit: int) -> bytearray:
        """The file at ``path`` (from :meth:`locate`), retried as a whole."""
        return await with_retries(lambda: fetch(self._http, path, limit), "download")

    async def close(self) -> None:
        await self._http.aclose()


async def fetch(client: httpx.AsyncClient, path: str, limit: int) -> bytearray:
    """A file's bytes, streamed into one buffer of exactly its size (Content-Length); past
    ``limit``, FileTooLarge before or while reading."""
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
