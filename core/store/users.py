"""Queries on residents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.store.models import DialogueState, Expiry, OutboxMessage, OutboxStatus, User


async def get_user(session: AsyncSession, channel: str, platform_id: str) -> User | None:
    result = await session.execute(
        select(User).where(User.channel == channel, User.platform_id == platform_id)
    )
    return result.scalar_one_or_none()


async def get_or_create_user(
    session: AsyncSession, channel: str, platform_id: str, now: datetime
) -> tuple[User, bool]:
    """The resident with this platform id, created on first contact; and whether it is new."""
    user = await get_user(session, channel, platform_id)
    if user is not None:
        return user, False
    user = User(channel=channel, platform_id=platform_id, created_at=now)
    session.add(user)
    await session.flush()
    return user, True


async def mark_inactive(session: AsyncSession, user: User, now: datetime, reason: str) -> int:
    """The resident blocked or left: stop sending and drop what was pending.

    Returns the number of outbox rows dropped.
    """
    user.active = False
    user.inactive_since = now
    result = await session.execute(
        OutboxMessage.__table__.update()
        .where(
            OutboxMessage.user_id == user.id,
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED]),
        )
        .values(status=OutboxStatus.DROPPED, last_error=reason)
    )
    return result.rowcount or 0


def reactivate(user: User) -> None:
    user.active = True
    user.inactive_since = None


async def delete_user(session: AsyncSession, user: User) -> None:
    """Delete the resident and everything stored about them."""
    for table in (OutboxMessage, DialogueState, Expiry):
        await session.execute(delete(table).where(table.user_id == user.id))
    await session.execute(delete(User).where(User.id == user.id))


async def get_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)
