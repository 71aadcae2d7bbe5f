"""Batches of work that arrives one item at a time (core.batching)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core.batching import Batcher


class Doubler:
    """Doubles numbers in batches, recording each batch; 13 is an error of its own, and a
    batch with 99 fails as a whole."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def run(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.release.wait()
        if 99 in items:
            raise RuntimeError("the whole batch failed")
        return [ValueError(f"unlucky {n}") if n == 13 else 2 * n for n in items]


async def test_items_that_arrive_while_a_batch_runs_go_together_in_the_next():
    doubler = Doubler()
    doubler.release.clear()
    batcher = Batcher(doubler.run, max_size=10)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first batch has started, with 1 alone
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(2, 15) if n != 13]
    await asyncio.sleep(0)
    doubler.release.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [2 * n for n in range(2, 15) if n != 13]
    assert doubler.batches == [[1], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [12, 14]]


async def test_an_items_error_goes_to_its_caller_only():
    batcher = Batcher(Doubler().run, max_size=10)
    results = await asyncio.gather(
        batcher.submit(12), batcher.submit(13), batcher.submit(14), return_exceptions=True
    )
    assert results[0] == 24 and results[2] == 28
    assert isinstance(results[1], ValueError)


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_runs():
    doubler = Doubler()
    batcher = Batcher(doubler.run, max_size=10)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(99), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert await batcher.submit(5) == 10


async def test_a_caller_that_gave_up_before_its_batch_started_is_left_out():
    doubler = Doubler()
    doubler.release.clear()
    batcher = Batcher(doubler.run, max_size=10)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gone = asyncio.create_task(batcher.submit(2))
    kept = asyncio.create_task(batcher.submit(3))
    await asyncio.sleep(0)
    gone.cancel()
    doubler.release.set()
    assert (await first, await kept) == (2, 6)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert doubler.batches == [[1], [3]]
