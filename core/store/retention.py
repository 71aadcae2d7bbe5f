"""Deleting what Kigen no longer needs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.store.models import Expiry, OutboxMessage, ProcessedEvent, QuestionStat, User
from core.store.users import delete_user


async def delete_expiries_before(session: AsyncSession, day: date) -> int:
    """Delete expiries that ended before ``day``, with their outbox rows."""
    old = select(Expiry.id).where(Expiry.expires_on < day)
    await session.execute(delete(OutboxMessage).where(OutboxMessage.expiry_id.in_(old)))
    result = await session.execute(delete(Expiry).where(Expiry.expires_on < day))
    return result.rowcount or 0


async def delete_users_inactive_since(session: AsyncSession, moment: datetime) -> int:
    """Delete residents who blocked or left before ``moment``, with all their data."""
    result = await session.execute(
        select(User).where(User.active.is_(False), User.inactive_since < moment)
    )
    gone = list(result.scalars())
    for user in gone:
        await delete_user(session, user)
    return len(gone)


async def delete_events_before(session: AsyncSession, moment: datetime) -> int:
    result = await session.execute(delete(ProcessedEvent).where(ProcessedEvent.created_at < moment))
    return result.rowcount or 0


async def delete_question_stats_before(session: AsyncSession, day: date) -> int:
    result = await session.execute(delete(QuestionStat).where(QuestionStat.day < day))
    return result.rowcount or 0
