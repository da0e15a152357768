"""The parts that bound memory, on their own: the byte budget and the streaming download."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from telegram import File

from nothotdog.bot.budget import Busy, ByteBudget
from nothotdog.bot.download import FileDownloader, FileTooLarge
from tests.ports import free_port

# --- ByteBudget -----------------------------------------------------------------------------


def test_files_fit_in_three_quarters_of_the_budget_or_are_busy_at_once() -> None:
    budget = ByteBudget(100)
    first = budget.admit(50)
    with pytest.raises(Busy):
        budget.admit(26)  # 76 > 75: the last quarter is kept for decoding
    second = budget.admit(25)
    assert budget.used == 75
    first.release()
    second.release()
    second.release()  # releasing twice gives back nothing twice
    assert budget.used == 0 and budget.peak == 75


def test_a_file_bigger_than_declared_grows_its_lease_if_there_is_room() -> None:
    budget = ByteBudget(100)
    with budget.admit(10) as lease:
        assert lease.grow(60) and budget.used == 60
        assert not lease.grow(80)  # 80 > 75
        assert budget.used == 60
    assert budget.used == 0


async def test_a_decode_waits_for_running_decodes_then_runs() -> None:
    budget = ByteBudget(100)
    running = await budget.for_decode(80)
    waiting = asyncio.create_task(budget.for_decode(30))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # 80 + 30 > 100
    running.release()
    lease = await asyncio.wait_for(waiting, 1)
    assert budget.used == 30
    lease.release()


async def test_a_decode_that_cannot_fit_while_nothing_decodes_is_busy_not_stuck() -> None:
    """Files waiting for their own decodes hold the budget: waiting would be forever."""
    budget = ByteBudget(100)
    with budget.admit(75):
        with pytest.raises(Busy):
            await asyncio.wait_for(budget.for_decode(30), 1)
        with await budget.for_decode(25):  # what fits, runs
            assert budget.used == 100


# --- FileDownloader -------------------------------------------------------------------------


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
    file = File("id", "u", file_path=f"{file_server}/photo.png")
    downloader = FileDownloader(timeout=10, connect_timeout=5)
    try:
        tracemalloc.start()
        got = await downloader.fetch(file, limit=len(data))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert got == data and isinstance(got, bytearray)
        assert peak < len(data) + 1024 * 1024, f"{peak / len(data):.2f} copies"
        with pytest.raises(FileTooLarge) as refused:  # from Content-Length: nothing read
            await downloader.fetch(file, limit=len(data) - 1)
        assert refused.value.size == len(data)
    finally:
        await downloader.close()
