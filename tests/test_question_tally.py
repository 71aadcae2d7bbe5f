"""Question counters: kept in memory, added to the database in one statement per flush."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core.question_tally import QuestionTally
from core.store.db import Database
from core.store.models import QuestionStat

DAY = date(2026, 11, 25)


async def counts(kigen) -> dict[tuple[str, str], int]:
    async with kigen.db.session() as session:
        rows = await session.execute(
            select(QuestionStat.outcome, QuestionStat.key, QuestionStat.count)
        )
        return {(outcome, key): count for outcome, key, count in rows}


async def test_flushes_add_to_the_stored_counters(kigen):
    tally = QuestionTally()
    tally.add(DAY, "answered", "rc_renewal")
    tally.add(DAY, "answered", "rc_renewal")
    tally.add(DAY, "unanswered", "ramen?")
    assert await tally.flush(kigen.db) == 2
    assert len(tally) == 0
    assert await tally.flush(kigen.db) == 0
    tally.add(DAY, "answered", "rc_renewal")
    await tally.flush(kigen.db)
    assert await counts(kigen) == {("answered", "rc_renewal"): 3, ("unanswered", "ramen?"): 1}


async def test_a_failed_flush_keeps_the_counts(kigen, tmp_path):
    tally = QuestionTally()
    tally.add(DAY, "answered", "rc_renewal")
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await tally.flush(broken)
    await broken.dispose()
    assert len(tally) == 1
    await tally.flush(kigen.db)
    assert await counts(kigen) == {("answered", "rc_renewal"): 1}


async def test_conversations_count_their_questions_when_kigen_closes(settings, clock):
    from core.app import build
    from tests.helpers import Chat

    kigen = await build(settings, clock)
    await Chat(kigen.conversation).say("When can I renew my residence card?")
    await kigen.close()
    kigen = await build(settings, clock)
    try:
        assert sum((await counts(kigen)).values()) == 1
    finally:
        await kigen.close()
