"""Retention: the daily job deletes what has passed its time, and nothing else."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from core import housekeeping
from core.store import events, expiries, stats, users
from core.store.models import Expiry, ProcessedEvent, QuestionStat, User


async def count(kigen, model) -> int:
    async with kigen.db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_retention_periods_are_applied(kigen, clock):
    now = clock.now()
    async with kigen.db.session() as session:
        keeper, _ = await users.get_or_create_user(session, "test", "keeper", now)
        await expiries.add_expiry(
            session, keeper.id, "residence_card", date(2026, 9, 1), now
        )  # 85 days ago
        await expiries.add_expiry(
            session, keeper.id, "my_number_card", date(2026, 10, 15), now
        )  # 41 days ago
        gone, _ = await users.get_or_create_user(session, "test", "gone", now)
        await users.mark_inactive(session, gone, now - timedelta(days=31), "unfollowed")
        recent, _ = await users.get_or_create_user(session, "test", "recent", now)
        await users.mark_inactive(session, recent, now - timedelta(days=5), "unfollowed")
        await events.first_time(session, "line", "old", now - timedelta(days=8))
        await events.first_time(session, "line", "new", now - timedelta(days=1))
        await stats.add_question_counts(
            session,
            {
                (date(2026, 8, 1), "unanswered", "old question"): 1,
                (date(2026, 11, 20), "unanswered", "new question"): 1,
            },
        )
    deleted = await housekeeping.run(kigen.db, kigen.settings, clock)
    assert deleted == {"expiries": 1, "users": 1, "events": 1, "question_stats": 1}
    async with kigen.db.session() as session:
        assert set((await session.execute(select(User.platform_id))).scalars()) == {
            "keeper",
            "recent",
        }
        assert [e.kind for e in (await session.execute(select(Expiry))).scalars()] == [
            "my_number_card"
        ]
        assert set((await session.execute(select(ProcessedEvent.event_id))).scalars()) == {"new"}
        assert set((await session.execute(select(QuestionStat.key))).scalars()) == {"new question"}
    assert await housekeeping.run(kigen.db, kigen.settings, clock) == dict.fromkeys(deleted, 0)
