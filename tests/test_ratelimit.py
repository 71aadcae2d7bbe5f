"""The pacing of senders."""

from __future__ import annotations

import asyncio
import itertools
import time

from core.ratelimit import RateLimiter


async def test_callers_woken_late_together_still_leave_one_interval_apart():
    """Five callers get their slots; the event loop is then busy for longer than all five
    slots: they must not all leave at once when it is free again."""
    limiter = RateLimiter(20.0)  # one every 50 ms
    departures: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        departures.append(time.monotonic())

    callers = [asyncio.create_task(caller()) for _ in range(5)]
    await asyncio.sleep(0)  # every caller has taken its slot
    time.sleep(0.4)  # the event loop is blocked past every slot
    await asyncio.gather(*callers)
    gaps = [later - earlier for earlier, later in itertools.pairwise(departures)]
    assert len(gaps) == 4
    # Each departure is planned one interval after the last, but the recorded times also
    # carry how late each caller woke (a millisecond under load); a burst would give ~0.
    assert min(gaps) >= 0.05 - 0.01
    assert departures[-1] - departures[1] >= 3 * 0.05 - 0.01


async def test_a_pause_holds_back_callers_that_already_had_their_slots():
    limiter = RateLimiter(20.0)
    departures: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        departures.append(time.monotonic())

    callers = [asyncio.create_task(caller()) for _ in range(3)]
    await asyncio.sleep(0)  # the first has left; the others wait for their slots
    paused_at = time.monotonic()
    limiter.pause(0.3)  # a Retry-After
    await asyncio.gather(*callers)
    assert len(departures) == 3
    assert departures[0] < paused_at
    assert min(departures[1:]) >= paused_at + 0.3 * 0.99
