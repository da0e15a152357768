"""Telegram files into memory, once: streamed into one buffer of exactly the file's size.

python-telegram-bot's ``download_as_bytearray`` holds a file three times over at its peak:
httpx joins the body's chunks into ``bytes``, and PTB copies those into a ``bytearray``.
Streaming with httpx (the HTTP client PTB itself uses) into a buffer sized from
Content-Length keeps one copy plus one network chunk, and stops reading past ``limit``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from telegram import File
from telegram.error import BadRequest, NetworkError, TimedOut

# What the HTTP stack may hold for one download beyond the file itself: asyncio reads the socket
# up to 256 KiB at a time, and anyio queues a read or two before it pauses the socket; httpcore
# hands over 64 KiB at a time. Measured with tracemalloc: 0.6-0.7 MiB for 1 to 20 MB files.
# Never more than the file itself, plus the request and response objects.
HTTP_BUFFER_BYTES = 1024 * 1024
HTTP_OBJECT_BYTES = 64 * 1024


def download_bytes(file_size: int) -> int:
    """Memory one download of ``file_size`` bytes takes at its peak: the file, and the HTTP
    stack's buffers."""
    return file_size + min(file_size, HTTP_BUFFER_BYTES) + HTTP_OBJECT_BYTES


class FileTooLarge(Exception):
    """The file is bigger than the caller allowed; nothing more is read."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the file has {size} bytes")
        self.size = size


class FileDownloader:
    """One httpx client for every download; errors are PTB's, so the retry layer reads them."""

    def __init__(self, timeout: float, connect_timeout: float) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            # A compressed body could expand past the size we reserved for it.
            headers={"Accept-Encoding": "identity"},
        )

    async def fetch(self, file: File, limit: int) -> bytearray:
        """The file's bytes; FileTooLarge past ``limit`` bytes, TimedOut/NetworkError/BadRequest
        as PTB would raise them."""
        path = str(file.file_path or "")
        if not path:
            raise BadRequest("the file has no file_path to download it from")
        if not path.startswith(("http://", "https://")):  # a Bot API server in --local mode
            return _read_local(Path(path), limit)
        buffer: bytearray | None = None
        try:
            async with self._client.stream("GET", _encoded(path)) as response:
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

    async def close(self) -> None:
        await self._client.aclose()


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
