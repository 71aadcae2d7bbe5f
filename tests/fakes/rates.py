"""Counting requests in time, for the fakes' rate checks and the tests of pacing."""

from __future__ import annotations

from collections.abc import Iterable


def most_in_window(times: Iterable[float], window: float = 1.0) -> int:
    """The most of ``times`` (seconds) within any sliding ``window``."""
    stamps = sorted(times)
    most, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most
