"""The pacing of senders."""

from __future__ import annotations

import asyncio
import itertools
import time

from core.ratelimit import RateLimiter
from tests.fakes.rates import most_in_window


def start_callers(limiter: RateLimiter, count: int) -> tuple[list[asyncio.Task[None]], list[float]]:
    """``count`` tasks that each acquire once, and the list their departure times go to."""
    departures: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        departures.append(time.monotonic())

    return [asyncio.create_task(caller()) for _ in range(count)], departures


async def test_callers_woken_late_together_do_not_leave_at_once():
    """Five callers get their slots; the event loop is then busy for longer than all five
    slots: they must not all leave at once when it is free again."""
    limiter = RateLimiter(20.0)  # one every 50 ms
    callers, departures = start_callers(limiter, 5)
    await asyncio.sleep(0)  # every caller has taken its slot
    time.sleep(0.4)  # the event loop is blocked past every slot
    await asyncio.gather(*callers)
    gaps = [later - earlier for earlier, later in itertools.pairwise(departures)]
    assert len(gaps) == 4
    # Half an interval may be made up; the recorded times also carry how late each caller
    # woke (a millisecond under load). A burst would give gaps of ~0.
    assert min(gaps) >= 0.05 / 2 - 0.01
    assert departures[-1] - departures[1] >= 2.5 * 0.05 - 0.01


async def test_callers_given_their_times_before_the_event_loop_stalls_do_not_burst():
    """The event loop stalls twice: after the first, callers are given their departure
    times; the second passes those times. They must still leave one after the other (the
    first gate let them all go at once, and LINE answered 429)."""
    limiter = RateLimiter(100.0)  # one every 10 ms
    callers, departures = start_callers(limiter, 30)
    await asyncio.sleep(0)
    time.sleep(0.1)  # busy: ten slots pass
    await asyncio.sleep(0.02)
    time.sleep(0.1)  # busy again: the times given after the first stall pass too
    await asyncio.gather(*callers)
    assert len(departures) == 30
    # 30 ms at 100/s: 3, one more made up early (10 ms), and 1 more for a late wake-up.
    assert most_in_window(departures, 0.03) <= 5


async def test_a_pause_holds_back_callers_that_already_had_their_slots():
    limiter = RateLimiter(20.0)
    callers, departures = start_callers(limiter, 3)
    await asyncio.sleep(0)  # the first has left; the others wait for their slots
    paused_at = time.monotonic()
    limiter.pause(0.3)  # a Retry-After
    await asyncio.gather(*callers)
    assert len(departures) == 3
    assert departures[0] < paused_at
    assert min(departures[1:]) >= paused_at + 0.3 * 0.99
