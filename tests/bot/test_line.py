"""The line on its own: places, the byte budget, first come first served."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from nothotdog.bot import line
from nothotdog.bot.line import Admission, Busy

# --- Admission ------------------------------------------------------------------------------


async def test_files_fit_in_three_quarters_of_the_budget_and_the_rest_wait_in_line() -> None:
    admission = Admission(places=10, total=100, max_wait_s=5)
    first = await admission._admit(50)
    waiting = asyncio.create_task(admission._admit(26))  # 76 > 75: a quarter is for decodes
    await asyncio.sleep(0.01)
    assert not waiting.done() and admission.waiting == 1
    second = asyncio.create_task(admission._admit(25))  # would fit, but waits its turn
    await asyncio.sleep(0.01)
    assert not second.done() and admission.waiting == 2
    first.release()
    first.release()  # releasing twice gives back nothing twice
    assert admission.used == 51 and admission.waiting == 0
    for lease in (await waiting, await second):
        lease.release()
    assert admission.used == 0 and admission.peak == 51


async def test_first_come_first_served_a_big_file_is_not_overtaken() -> None:
    admission = Admission(places=10, total=100, max_wait_s=5)
    order: list[str] = []

    async def photo(name: str, nbytes: int, hold: float) -> None:
        async with admission.place(nbytes):
            order.append(name)
            await asyncio.sleep(hold)

    first = asyncio.create_task(photo("first", 70, 0.05))
    await asyncio.sleep(0)
    big = asyncio.create_task(photo("big", 60, 0))  # waits for "first"
    await asyncio.sleep(0)
    small = asyncio.create_task(photo("small", 1, 0))  # would fit now, but "big" came first
    await asyncio.wait_for(asyncio.gather(first, big, small), 2)
    assert order == ["first", "big", "small"]


async def test_places_bound_photos_in_flight_and_the_rest_wait() -> None:
    admission = Admission(places=2, total=1000, max_wait_s=5)
    done = asyncio.Event()

    async def photo() -> None:
        async with admission.place(1):
            await done.wait()

    tasks = [asyncio.create_task(photo()) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert admission.in_flight == 2 and admission.waiting == 3
    done.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert admission.in_flight == 0 and admission.peak_in_flight == 2 and admission.used == 0


async def test_busy_only_past_the_wait_limit_and_a_cancelled_wait_leaves_the_line() -> None:
    admission = Admission(places=1, total=100, max_wait_s=0.05)
    async with admission.place(10):
        with pytest.raises(Busy, match="within"):
            await admission._admit(10)
        assert admission.waiting == 0
        waiting = asyncio.create_task(admission._admit(10))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        assert admission.waiting == 0
    assert admission.in_flight == 0 and admission.used == 0


async def test_busy_at_once_when_the_line_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(line, "MAX_WAITING", 1)
    admission = Admission(places=1, total=100, max_wait_s=5)
    async with admission.place(10):
        waiting = asyncio.create_task(admission._admit(10))
        await asyncio.sleep(0.01)
        with pytest.raises(Busy, match="waiting"):
            await admission._admit(10)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting


async def test_busy_at_once_when_the_expected_wait_is_too_long() -> None:
    admission = Admission(places=1, total=100, max_wait_s=1.0)
    admission._paced.extend([0.0, 0.5, 1.0, 1.5])  # one admission from the line every 0.5 s
    assert admission.expected_wait(2) == pytest.approx(1.0)
    async with admission.place(10):
        first = asyncio.create_task(admission._admit(10))  # expected 0.5 s: waits
        await asyncio.sleep(0.01)
        second = asyncio.create_task(admission._admit(10))  # expected 1.0 s: waits
        await asyncio.sleep(0.01)
        with pytest.raises(Busy, match="expected"):
            await admission._admit(10)  # expected 1.5 s: told at once
        for task in (first, second):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_an_old_lines_pace_is_forgotten_once_the_line_is_empty() -> None:
    admission = Admission(places=1, total=100, max_wait_s=1.0)
    admission._paced.extend([0.0, 100.0, 200.0, 300.0])  # a slow line, long ago
    async with admission.place(10):
        assert admission.expected_wait(1) == pytest.approx(100.0)
    assert admission.expected_wait(1) is None  # the line emptied: no pace to go by
    async with admission.place(10):
        waiting = asyncio.create_task(admission._admit(10))  # waits, not refused at once
        await asyncio.sleep(0.01)
        assert not waiting.done()
    (await waiting).release()


async def test_a_file_bigger_than_declared_grows_its_lease_if_there_is_room() -> None:
    admission = Admission(places=1, total=100, max_wait_s=5)
    async with admission.place(10) as lease:
        assert lease.grow(60) and admission.used == 60
        assert not lease.grow(80)  # 80 > 75
        assert admission.used == 60
    assert admission.used == 0


async def test_a_decode_waits_for_running_decodes_then_runs() -> None:
    admission = Admission(places=1, total=100, max_wait_s=5)
    running = await admission.for_decode(80)
    waiting = asyncio.create_task(admission.for_decode(30))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # 80 + 30 > 100
    running.release()
    lease = await asyncio.wait_for(waiting, 1)
    assert admission.used == 30
    lease.release()


async def test_a_decode_that_cannot_fit_while_nothing_decodes_is_busy_not_stuck() -> None:
    """Files waiting for their own decodes hold the budget: waiting would be forever."""
    admission = Admission(places=1, total=100, max_wait_s=5)
    async with admission.place(75):
        with pytest.raises(Busy):
            await asyncio.wait_for(admission.for_decode(30), 1)
        with await admission.for_decode(25):  # what fits, runs
            assert admission.used == 100
