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
        self.abandoned: list[tuple[int, int]] = []
        self.release = asyncio.Event()
        self.release.set()

    def batcher(self, max_size: int = 10) -> Batcher[int, int]:
        return Batcher(self.run, max_size=max_size, abandoned=self.left)

    async def left(self, item: int, result: int) -> None:
        self.abandoned.append((item, result))

    async def run(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.release.wait()
        if 99 in items:
            raise RuntimeError("the whole batch failed")
        return [ValueError(f"unlucky {n}") if n == 13 else 2 * n for n in items]


async def first_batch_held(
    max_size: int = 10,
) -> tuple[Doubler, Batcher[int, int], asyncio.Task[int]]:
    """A batcher whose first batch, 1 alone, has started and waits for ``release``."""
    doubler = Doubler()
    doubler.release.clear()
    batcher = doubler.batcher(max_size)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return doubler, batcher, first


async def test_items_that_arrive_while_a_batch_runs_go_together_in_the_next():
    doubler, batcher, first = await first_batch_held()
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(2, 15) if n != 13]
    await asyncio.sleep(0)
    doubler.release.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [2 * n for n in range(2, 15) if n != 13]
    assert doubler.batches == [[1], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [12, 14]]


async def test_an_items_error_goes_to_its_caller_only():
    batcher = Doubler().batcher()
    results = await asyncio.gather(
        batcher.submit(12), batcher.submit(13), batcher.submit(14), return_exceptions=True
    )
    assert results[0] == 24 and results[2] == 28
    assert isinstance(results[1], ValueError)


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_runs():
    doubler = Doubler()
    batcher = doubler.batcher()
    results = await asyncio.gather(batcher.submit(1), batcher.submit(99), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert await batcher.submit(5) == 10


async def test_a_caller_that_gave_up_before_its_batch_started_is_left_out():
    doubler, batcher, first = await first_batch_held()
    gone = asyncio.create_task(batcher.submit(2))
    kept = asyncio.create_task(batcher.submit(3))
    await asyncio.sleep(0)
    gone.cancel()
    doubler.release.set()
    assert (await first, await kept) == (2, 6)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert doubler.batches == [[1], [3]]


async def test_a_caller_that_gave_up_while_its_batch_ran_has_its_result_handed_on():
    doubler = Doubler()
    doubler.release.clear()
    batcher = doubler.batcher()
    gone = asyncio.create_task(batcher.submit(4))
    kept = asyncio.create_task(batcher.submit(5))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # both are in the running batch
    gone.cancel()
    doubler.release.set()
    assert await kept == 10
    assert doubler.abandoned == [(4, 8)]


async def test_callers_waiting_behind_a_cancelled_batch_do_not_hang():
    """At shutdown the batches are cancelled: every caller, running or waiting, is
    cancelled with them instead of waiting for ever."""
    _, batcher, first = await first_batch_held(max_size=1)
    callers = [first, asyncio.create_task(batcher.submit(2))]
    await asyncio.sleep(0)  # 1 runs, 2 waits
    assert batcher._lane is not None
    batcher._lane.cancel()
    results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 5)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)


async def test_a_caller_cancelled_as_its_result_comes_has_it_handed_on():
    doubler, _, first = await first_batch_held()
    doubler.release.set()
    await asyncio.sleep(0)  # the batch sets the result; the caller has not resumed yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.sleep(0)
    assert doubler.abandoned == [(1, 2)]
