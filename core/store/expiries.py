"""Queries on saved expiry dates."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.store.models import Expiry, OutboxMessage, User


async def add_expiry(
    session: AsyncSession, user_id: int, kind: str, expires_on: date, now: datetime
) -> Expiry:
    expiry = Expiry(user_id=user_id, kind=kind, expires_on=expires_on, created_at=now)
    session.add(expiry)
    await session.flush()
    return expiry


async def list_expiries(session: AsyncSession, user_id: int) -> list[Expiry]:
    result = await session.execute(
        select(Expiry).where(Expiry.user_id == user_id).order_by(Expiry.expires_on, Expiry.id)
    )
    return list(result.scalars())


async def get_expiry(session: AsyncSession, user_id: int, expiry_id: int) -> Expiry | None:
    """The expiry, only if it belongs to this resident."""
    result = await session.execute(
        select(Expiry).where(Expiry.id == expiry_id, Expiry.user_id == user_id)
    )
    return result.scalar_one_or_none()


async def delete_expiry(session: AsyncSession, expiry: Expiry) -> None:
    """Delete the expiry and its outbox rows, sent or not."""
    await session.execute(delete(OutboxMessage).where(OutboxMessage.expiry_id == expiry.id))
    await session.execute(delete(Expiry).where(Expiry.id == expiry.id))


async def page_with_users(
    session: AsyncSession, *, after_id: int, limit: int
) -> list[tuple[Expiry, User]]:
    """Up to ``limit`` expiries with ids above ``after_id``, in id order, with their users."""
    result = await session.execute(
        select(Expiry, User)
        .join(User, User.id == Expiry.user_id)
        .where(Expiry.id > after_id)
        .order_by(Expiry.id)
        .limit(limit)
    )
    return [(expiry, user) for expiry, user in result.all()]
