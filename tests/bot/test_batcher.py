"""The micro-batcher on its own: batches form, order holds, failures stay local, the bound holds."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bot.batcher import BatcherClosed, Busy, MicroBatcher
from bot.classifier import Classifier
from contract.runtime import OnnxModel


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


class Recorder:
    """A batch function that records the batches it saw and can be held or made to fail."""

    def __init__(self, fail_on: object = None) -> None:
        self.batches: list[list[object]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail_on = fail_on

    def __call__(self, items: list[object]) -> list[object]:
        self.release.wait(5)
        self.batches.append(list(items))
        if self.fail_on in items:
            raise ValueError(f"cannot handle {self.fail_on!r}")
        return [f"done:{item}" for item in items]


async def test_items_arriving_together_share_one_call_in_order(pool: ThreadPoolExecutor) -> None:
    run = Recorder()
    batcher = MicroBatcher(run, executor=pool, max_batch=8, max_wait=0.05)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    await batcher.close()
    assert results == [f"done:{i}" for i in range(8)]
    assert run.batches == [list(range(8))]
    assert batcher.stats.batches == 1 and batcher.stats.largest == 8


async def test_batches_are_capped_at_max_batch(pool: ThreadPoolExecutor) -> None:
    run = Recorder()
    batcher = MicroBatcher(run, executor=pool, max_batch=4, max_wait=0.05)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    await batcher.close()
    assert results == [f"done:{i}" for i in range(10)]
    assert [len(b) for b in run.batches] == [4, 4, 2]
    assert [i for b in run.batches for i in b] == list(range(10))


async def test_a_lone_item_waits_at_most_max_wait(pool: ThreadPoolExecutor) -> None:
    batcher = MicroBatcher(Recorder(), executor=pool, max_batch=8, max_wait=0.02)
    started = time.perf_counter()
    assert await batcher.submit("x") == "done:x"
    assert time.perf_counter() - started < 0.5
    await batcher.close()


async def test_a_failing_item_does_not_fail_its_neighbours(pool: ThreadPoolExecutor) -> None:
    run = Recorder(fail_on="bad")
    batcher = MicroBatcher(run, executor=pool, max_batch=8, max_wait=0.05)
    outcomes = await asyncio.gather(
        *(batcher.submit(i) for i in ["a", "bad", "c"]), return_exceptions=True
    )
    await batcher.close()
    assert outcomes[0] == "done:a" and outcomes[2] == "done:c"
    assert isinstance(outcomes[1], ValueError)
    assert run.batches[0] == ["a", "bad", "c"]  # tried together first, then one by one


async def test_the_queue_bound_holds(pool: ThreadPoolExecutor) -> None:
    run = Recorder()
    run.release.clear()  # the first batch blocks in its worker thread
    batcher = MicroBatcher(run, executor=pool, max_batch=1, max_wait=0, max_queue=2)
    running = asyncio.ensure_future(batcher.submit("running"))
    await asyncio.sleep(0.05)  # taken off the queue, stuck in the worker
    waiting = [asyncio.ensure_future(batcher.submit(i)) for i in ("w1", "w2")]
    await asyncio.sleep(0)
    assert batcher.pending == 2
    with pytest.raises(Busy):
        await batcher.submit("one too many")
    run.release.set()
    assert await running == "done:running"
    assert await asyncio.gather(*waiting) == ["done:w1", "done:w2"]
    assert await batcher.submit("later") == "done:later"  # and it recovers
    await batcher.close()


async def test_close_fails_waiting_items_and_refuses_new_ones(pool: ThreadPoolExecutor) -> None:
    run = Recorder()
    run.release.clear()
    batcher = MicroBatcher(run, executor=pool, max_batch=1, max_wait=0, max_queue=4)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(batcher.close())
    await asyncio.sleep(0.05)
    run.release.set()
    await closing
    assert await first == "done:1"  # running work finishes
    with pytest.raises(BatcherClosed):
        await queued
    with pytest.raises(BatcherClosed):
        await batcher.submit(3)


async def test_event_loop_stays_free_while_a_batch_runs(pool: ThreadPoolExecutor) -> None:
    def slow(items: list[int]) -> list[int]:
        time.sleep(0.3)
        return items

    batcher = MicroBatcher(slow, executor=pool, max_wait=0)
    job = asyncio.ensure_future(batcher.submit(1))
    ticks = 0
    while not job.done():
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks >= 10  # the loop kept running meanwhile
    await batcher.close()


def test_classifier_batch_equals_one_by_one(tiny_model: OnnxModel) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(5)]
    classifier = Classifier(tiny_model)
    together = classifier.predict(images)
    alone = [classifier.predict([image])[0] for image in images]
    assert [v.label for v in together] == [v.label for v in alone]
    np.testing.assert_allclose(
        [v.probability for v in together], [v.probability for v in alone], rtol=1e-6
    )
