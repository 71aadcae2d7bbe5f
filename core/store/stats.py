"""Figures for the operators' dashboard, and the question counters behind them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

from sqlalchemy import Integer, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.store import sql
from core.store.models import OutboxKind, OutboxMessage, OutboxStatus, QuestionStat, User


async def add_question_counts(
    session: AsyncSession, counts: Mapping[tuple[date, str, str], int]
) -> None:
    """Add to the counters of question outcomes, keyed by (day, outcome, key): the entry
    id when answered, the redacted question when clarified or unanswered."""
    rows = [
        {"day": day, "outcome": outcome, "key": key, "count": count}
        for (day, outcome, key), count in sorted(counts.items())
    ]
    table = QuestionStat.__table__
    statement = sql.insert(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "outcome", "key"],
        set_={"count": table.c.count + statement.excluded.count},
    )
    await session.execute(statement, rows)


async def top_questions(
    session: AsyncSession, outcome: str, since: date, limit: int = 10
) -> list[tuple[str, int]]:
    result = await session.execute(
        select(QuestionStat.key, func.sum(QuestionStat.count).label("n"))
        .where(QuestionStat.outcome == outcome, QuestionStat.day >= since)
        .group_by(QuestionStat.key)
        .order_by(func.sum(QuestionStat.count).desc())
        .limit(limit)
    )
    return [(key, int(n)) for key, n in result.all()]


async def subscribers(session: AsyncSession) -> list[tuple[str, str | None, int, int]]:
    """(channel, language, active residents, of whom with updates on)."""
    result = await session.execute(
        select(
            User.channel,
            User.language,
            func.count(),
            func.sum(func.coalesce(User.updates_opt_in, False).cast(Integer)),
        )
        .where(User.active.is_(True))
        .group_by(User.channel, User.language)
        .order_by(func.count().desc())
    )
    return [
        (channel, language, int(n), int(opted or 0)) for channel, language, n, opted in result.all()
    ]


async def deliveries(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Reminders scheduled, and reminders and broadcast batches sent or failed in 30 days."""
    since = now - timedelta(days=30)

    async def count(*conditions) -> int:  # type: ignore[no-untyped-def]
        return int(
            await session.scalar(select(func.count()).select_from(OutboxMessage).where(*conditions))
        )

    return {
        "reminders_scheduled": await count(
            OutboxMessage.kind == OutboxKind.REMINDER, OutboxMessage.status == OutboxStatus.PENDING
        ),
        "reminders_sent": await count(
            OutboxMessage.kind == OutboxKind.REMINDER,
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.sent_at >= since,
        ),
        "broadcast_messages_sent": await count(
            OutboxMessage.kind == OutboxKind.BROADCAST,
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.sent_at >= since,
        ),
        "failures": await count(
            OutboxMessage.status == OutboxStatus.FAILED, OutboxMessage.due_at >= since
        ),
    }


async def outbox_by_state(session: AsyncSession) -> dict[tuple[str, str], int]:
    result = await session.execute(
        select(OutboxMessage.kind, OutboxMessage.status, func.count()).group_by(
            OutboxMessage.kind, OutboxMessage.status
        )
    )
    return {(kind, status): int(n) for kind, status, n in result.all()}


async def broadcasts_in_progress(session: AsyncSession) -> dict[int, dict[str, int]]:
    from core.store import broadcasts

    return {
        b.id: await broadcasts.progress(session, b.id)
        for b in await broadcasts.in_progress(session)
    }
