"""The scheduler's jobs: a tick that finds the previous run still going returns at once."""

from __future__ import annotations

import asyncio

from bot.scheduler import one_at_a_time


async def test_a_tick_during_a_long_run_returns_at_once_and_the_next_one_runs():
    calls: list[str] = []
    release = asyncio.Event()

    async def queue_broadcast(name: str) -> None:
        calls.append(name)
        await release.wait()

    job = one_at_a_time(queue_broadcast)
    first = asyncio.create_task(job("first"))
    await asyncio.sleep(0)
    await asyncio.wait_for(job("during"), timeout=5)  # returns without running
    release.set()
    await first
    await job("after")
    assert calls == ["first", "after"]
