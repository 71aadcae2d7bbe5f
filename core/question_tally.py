"""Question counters for the operators' dashboard, kept in memory between flushes.

Counting in the database on every question would make every conversation turn write the
same few hot rows; instead each process adds up its counts here and writes them in one
statement every few seconds (and when it stops). A process that crashes loses at most the
counts since its last flush: they are statistics, not records.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date

from core.store import stats
from core.store.db import Database

#: Keys longer than this are cut (the column's size).
MAX_KEY_LENGTH = 200


class QuestionTally:
    """Counts of question outcomes by day, outcome and key (entry id or redacted text)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[date, str, str]] = Counter()
        self._flushing = asyncio.Lock()

    def add(self, day: date, outcome: str, key: str) -> None:
        # PostgreSQL refuses NUL in text; one such key would fail every later flush.
        self._counts[(day, outcome, key.replace("\x00", "")[:MAX_KEY_LENGTH])] += 1

    def absorb(self, other: QuestionTally) -> None:
        """Add ``other``'s counts to these: a batch of turns counts apart, and its counts
        join the process's once its transaction committed."""
        self._counts.update(other._counts)

    def __len__(self) -> int:
        return len(self._counts)

    async def flush(self, db: Database) -> int:
        """Add the counts to the database; returns how many counters were written. On
        failure the counts are kept for the next flush."""
        async with self._flushing:
            counts, self._counts = self._counts, Counter()
            if not counts:
                return 0
            try:
                async with db.session() as session:
                    await stats.add_question_counts(session, counts)
            except BaseException:
                self._counts.update(counts)
                raise
            return len(counts)
