"""Pacing for senders: a global rate and a minimum gap per chat."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

#: How much closer together than they left two calls may reach the platform, in seconds
#: (the network's and the platform's own jitter). The limiter counts its departures over
#: a second and this much, so that the platform, counting arrivals over a second, sees no
#: more than it let leave.
ARRIVAL_JITTER = 0.010
WINDOW = 1.0 + ARRIVAL_JITTER
#: How far behind its pace a limiter woken late catches up, in seconds. Catching up all of
#: it (up to a window) filled every second to the window's most and drew 429s from LINE
#: in two of four million-resident broadcasts, while its fake was short of CPU; 30 ms
#: measured 96.7-97.8 % of LINE's limit in five of six, and two 429s in the sixth
#: (BENCHMARKS.md).
CATCH_UP = 0.030


def most_in_a_second(rate: float) -> float:
    """The most departures a limiter at ``rate`` lets leave within any :data:`WINDOW` (what
    the rate allows in it, and one): the most calls the platform sees within a second, as
    long as none reaches it more than :data:`ARRIVAL_JITTER` closer to another than they
    left."""
    return rate * WINDOW + 1


def fastest_within(limit: float) -> float:
    """The highest rate whose :func:`most_in_a_second` stays within ``limit``."""
    return (limit - 1) / WINDOW


class RateLimiter:
    """``rate`` acquisitions per second at an even pace, and at most one per
    ``per_key_interval`` seconds for the same key; ``pause`` stops everything for a while
    (a platform's Retry-After).

    Callers that a busy event loop wakes late leave without waiting until the pace is made
    up (as far as :data:`CATCH_UP`), but never more than :func:`most_in_a_second` within
    any :data:`WINDOW`."""

    def __init__(
        self,
        rate: float,
        per_key_interval: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.interval = 1.0 / rate
        self.most = math.floor(most_in_a_second(rate))
        self.per_key_interval = per_key_interval
        self._clock = clock
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_by_key: OrderedDict[str, float] = OrderedDict()
        self._max_keys = max_keys
        self._lock = asyncio.Lock()
        self._departures: deque[float] = deque(maxlen=self.most)
        self._on_pace = 0.0  # when the next departure is due at the rate
        self._gate = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        # The pace starts again when the pause ends, with nothing to make up.
        self._on_pace = max(self._on_pace, self._paused_until)

    async def acquire(self, key: str | None = None) -> None:
        """Wait until one more message may be sent (to ``key``)."""
        async with self._lock:
            now = self._clock()
            start = max(now, self._next_slot, self._paused_until)
            if key is not None and key in self._last_by_key:
                start = max(start, self._last_by_key[key] + self.per_key_interval)
            self._next_slot = start + self.interval
            if key is not None:
                self._last_by_key[key] = start
                self._last_by_key.move_to_end(key)
                if len(self._last_by_key) > self._max_keys:
                    self._last_by_key.popitem(last=False)
        delay = start - now
        if delay > 0:
            await asyncio.sleep(delay)
        # Callers whose slots passed while the event loop was busy elsewhere wake together;
        # each leaves only when the departures before it allow, and checks again after
        # every sleep, since a pause or a busy event loop may have come in between.
        async with self._gate:  # one at a time: the others need not wake for nothing
            while True:
                now = self._clock()
                leave_at = max(self._on_pace, self._window_opens(), self._paused_until)
                if leave_at <= now:
                    self._depart(now)
                    return
                await asyncio.sleep(leave_at - now)

    def _window_opens(self) -> float:
        """When one more departure keeps the window within :attr:`most`."""
        if len(self._departures) < self.most:
            return 0.0
        return self._departures[0] + WINDOW

    def _depart(self, now: float) -> None:
        self._departures.append(now)
        # Behind the pace (a late wake-up), the next may leave at once, until the pace is
        # made up; what is more than CATCH_UP behind is not made up.
        self._on_pace = max(self._on_pace, now - CATCH_UP) + self.interval
