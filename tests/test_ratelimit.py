"""The pacing of senders."""

from __future__ import annotations

import asyncio
import time

from core.ratelimit import WINDOW, RateLimiter
from tests.fakes.rates import most_in_window


def start_callers(limiter: RateLimiter, count: int) -> tuple[list[asyncio.Task[None]], list[float]]:
    """``count`` tasks that each acquire once, and the list their departure times go to."""
    departures: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        departures.append(time.monotonic())

    return [asyncio.create_task(caller()) for _ in range(count)], departures


async def test_callers_woken_late_make_up_the_pace_as_far_as_the_catch_up():
    """The event loop is busy past ten callers' slots: when it is free again, 30 ms of
    the pace is made up at once (each leaving one interval after the other lost it all,
    and kept LINE's multicasts at 94-96 % of its limit), and no more."""
    limiter = RateLimiter(100.0)  # one every 10 ms
    callers, departures = start_callers(limiter, 12)
    await asyncio.sleep(0)  # every caller has taken its slot; the first has left
    time.sleep(0.1)  # the event loop is blocked past ten more slots
    await asyncio.gather(*callers)
    assert len(departures) == 12
    # The first woken and three made up leave together, a few event-loop turns apart
    # (at the pace, or with 10 ms made up as before, 20 ms) ...
    assert departures[4] - departures[1] < 0.015
    # ... and the next waits for the pace again.
    assert departures[5] - departures[4] >= 0.007


async def test_a_window_never_holds_more_than_the_limiters_most():
    """Right after a catch-up, a window's worth at the pace would be more than the
    limiter's most within one window (the made-up calls and a full second): the window
    holds the later calls back."""
    limiter = RateLimiter(100.0)  # at most 102 within 1.01 s
    callers, departures = start_callers(limiter, 120)
    await asyncio.sleep(0)
    time.sleep(0.1)
    await asyncio.gather(*callers)
    assert len(departures) == 120
    assert limiter.most == 102
    assert most_in_window(departures, WINDOW) <= limiter.most


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
    # After the pause the pace starts again, with nothing to make up.
    assert departures[2] - departures[1] >= 0.05 - 0.005
