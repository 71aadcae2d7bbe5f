"""Slowing down a resident who floods Kigen, without slowing anybody else."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FloodGuard:
    """Allows each sender ``limit`` messages per ``window`` seconds (in this process)."""

    def __init__(
        self,
        limit: int = 20,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_senders: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_senders = max_senders
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._warned: set[str] = set()

    def check(self, sender: str) -> str:
        """``"ok"``, ``"warn"`` (the first message over the limit) or ``"drop"``."""
        now = self._clock()
        times = self._seen.setdefault(sender, deque())
        self._seen.move_to_end(sender)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            self._warned.discard(sender)
            self._forget_oldest()
            return "ok"
        if sender in self._warned:
            return "drop"
        self._warned.add(sender)
        return "warn"

    def _forget_oldest(self) -> None:
        while len(self._seen) > self._max_senders:
            sender, _ = self._seen.popitem(last=False)
            self._warned.discard(sender)
