"""The rate limiter alone: the share of its rate that 64 concurrent callers reach, and the
most departures in any one second, at 25, 200 and 2,000 per second (Telegram, LINE
multicast and LINE push paces), with and without the event loop stalling now and then.

    .venv/bin/python bench/ratelimit.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fakes

from core.ratelimit import RateLimiter
from tests.fakes.rates import most_in_window

CALLERS = 64  #: like LINE's messages in flight
CALL = 0.002  #: seconds each call waits for its answer


async def run(rate: float, seconds: float, stall_every: float | None) -> list[float]:
    """Departure times of callers kept ``CALLERS`` at once for ``seconds``; with
    ``stall_every``, the event loop is blocked 30 ms that often."""
    limiter = RateLimiter(rate)
    departures: list[float] = []
    slots = asyncio.Semaphore(CALLERS)
    running: set[asyncio.Task[None]] = set()

    async def call() -> None:
        try:
            await limiter.acquire()
            departures.append(time.monotonic())
            await asyncio.sleep(CALL)
        finally:
            slots.release()

    async def stall() -> None:
        while stall_every is not None:
            await asyncio.sleep(stall_every)
            time.sleep(0.03)

    staller = asyncio.create_task(stall())
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await slots.acquire()
        task = asyncio.create_task(call())
        running.add(task)
        task.add_done_callback(running.discard)
    staller.cancel()
    await asyncio.gather(*running)
    return departures


def main(seconds: float) -> None:
    print(f"{'rate/s':>7} {'stalls':>14} {'achieved':>9} {'most in 1 s':>12}")
    for rate in (25.0, 200.0, 2000.0):
        for stall_every in (None, 0.2):
            times = asyncio.run(run(rate, seconds, stall_every))
            achieved = (len(times) - 1) / (times[-1] - times[0]) / rate
            stalls = "none" if stall_every is None else f"30 ms / {stall_every * 1000:.0f} ms"
            print(f"{rate:>7.0f} {stalls:>14} {achieved:>9.1%} {most_in_window(times):>12}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    main(parser.parse_args().seconds)
