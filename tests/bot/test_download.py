"""The download on its own: one buffer of the file's size, and the limit."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nothotdog.bot.download import FileTooLarge, fetch
from tests.ports import free_port

# --- download ---------------------------------------------------------------------------------


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server in another process, so this process's memory is the client's."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


async def test_download_holds_the_file_once(file_server: str, tmp_path: Path) -> None:
    """PTB's download_as_bytearray peaks at three copies (httpx's chunks joined into bytes,
    then a bytearray); streaming into one buffer of the file's size keeps one, plus a chunk."""
    data = bytes(range(256)) * (40 * 1024)  # 10 MB
    (tmp_path / "photo.png").write_bytes(data)
    url = f"{file_server}/photo.png"
    async with httpx.AsyncClient(headers={"Accept-Encoding": "identity"}) as client:
        tracemalloc.start()
        got = await fetch(client, url, limit=len(data))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert got == data and isinstance(got, bytearray)
        assert peak < len(data) + 1024 * 1024, f"{peak / len(data):.2f} copies"
        with pytest.raises(FileTooLarge) as refused:  # from Content-Length: nothing read
            await fetch(client, url, limit=len(data) - 1)
        assert refused.value.size == len(data)
