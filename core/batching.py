"""Work that arrives one item at a time, done in batches.

A batch starts as soon as an item arrives and no batch is running; it takes every item
waiting, up to ``max_size``. Under light load a batch is one item and nothing waits for
company; under heavy load items queue while a batch runs, and the next takes them
together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """``await batcher.submit(item)`` runs ``item`` in a batch through ``run`` and gives
    its result back (or raises its error). ``run`` gets the items of a batch and returns
    one outcome per item, in order: a result, or the exception to raise.

    A caller that gives up while its batch runs does not stop it: ``abandoned`` gets the
    item and its result instead."""

    def __init__(
        self,
        run: Callable[[Sequence[Item]], Awaitable[Sequence[Result | Exception]]],
        *,
        max_size: int,
        abandoned: Callable[[Item, Result], Awaitable[None]],
    ) -> None:
        self._run = run
        self._abandoned = abandoned
        self.max_size = max_size
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._lane: asyncio.Task[None] | None = None
        self._handing_on: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._lane is None:
            self._lane = asyncio.create_task(self._batches())
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelled in the very step its result came: handed on all the same.
            if future.done() and not future.cancelled() and future.exception() is None:
                task = asyncio.create_task(self._abandoned(item, future.result()))
                self._handing_on.add(task)
                task.add_done_callback(self._handing_on.discard)
            raise

    async def _batches(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self.max_size]
                del self._waiting[: self.max_size]
                # A caller that gave up (its request was cancelled) before its batch started
                # is left out: as if it had never come.
                batch = [(item, future) for item, future in batch if not future.done()]
                if batch:
                    await self._one_batch(batch)
        finally:
            # In the same step as the last look at what is waiting: an item that comes
            # after it starts a new lane. Only a lane that was cancelled (or failed) leaves items.
            self._lane = None
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()

    async def _one_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            outcomes = list(await self._run([item for item, _ in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(batch)}")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # handed to every caller of the batch
            outcomes = [error] * len(batch)
        left: list[tuple[Item, Result]] = []
        for (item, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                if not isinstance(outcome, Exception):
                    left.append((item, outcome))
            elif isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        for item, result in left:
            await self._abandoned(item, result)
