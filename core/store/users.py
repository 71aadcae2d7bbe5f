"""Queries on residents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.store import sql
from core.store.models import (
    BroadcastRecipient,
    DialogueState,
    Expiry,
    OutboxMessage,
    OutboxStatus,
    User,
)


async def get_user(session: AsyncSession, channel: str, platform_id: str) -> User | None:
    result = await session.execute(
        select(User).where(User.channel == channel, User.platform_id == platform_id)
    )
    return result.scalar_one_or_none()


#: Built once: this query runs for every batch of messages.
_USERS_AND_STATES = (
    select(User, DialogueState)
    .outerjoin(DialogueState, DialogueState.user_id == User.id)
    .where(
        User.channel == bindparam("channel"),
        User.platform_id.in_(bindparam("platform_ids", expanding=True)),
    )
)


async def get_users_and_states(
    session: AsyncSession, channel: str, platform_ids: Sequence[str]
) -> dict[str, tuple[User, DialogueState | None]]:
    """The residents with these platform ids and their dialogue states, in one query, by
    platform id (those not stored yet are left out)."""
    result = await session.execute(
        _USERS_AND_STATES, {"channel": channel, "platform_ids": list(platform_ids)}
    )
    return {user.platform_id: (user, state) for user, state in result}


def new_user(channel: str, platform_id: str, now: datetime) -> User:
    """A resident on first contact, not yet stored (see :func:`add_users`)."""
    return User(channel=channel, platform_id=platform_id, created_at=now)


_ADD_USERS = sql.prepared(
    lambda dialect: (
        dialect.insert(User)
        .on_conflict_do_nothing(index_elements=["channel", "platform_id"])
        .returning(User)
        # Values given at execution make this an ORM "bulk" insert, which would leave out
        # a None instead of storing NULL (and so take the column's default).
        .execution_options(render_nulls=True)
    )
)


async def add_users(session: AsyncSession, new: Sequence[User]) -> list[User]:
    """Store new residents now, in one statement, so that they have ids; returns the stored
    rows in the same order. When another process stored one of them a moment earlier (two
    replicas, one first contact), that row is returned."""
    if not new:
        return []
    values = [user.model_dump(exclude={"id"}) for user in new]
    result = await session.execute(_ADD_USERS(session), values)
    stored = {(user.channel, user.platform_id): user for user in result.scalars()}
    for user in new:
        key = (user.channel, user.platform_id)
        if key not in stored:
            existing = await get_user(session, *key)
            assert existing is not None  # it conflicted, so it exists
            stored[key] = existing
    return [stored[user.channel, user.platform_id] for user in new]


async def get_or_create_user(
    session: AsyncSession, channel: str, platform_id: str, now: datetime
) -> tuple[User, bool]:
    """The resident with this platform id, created on first contact; and whether it is new."""
    user = await get_user(session, channel, platform_id)
    if user is not None:
        return user, False
    (user,) = await add_users(session, [new_user(channel, platform_id, now)])
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
        .values(status=OutboxStatus.DROPPED, last_error=reason, body=None)
    )
    return result.rowcount or 0


def reactivate(user: User) -> None:
    user.active = True
    user.inactive_since = None


async def delete_user(session: AsyncSession, user: User) -> None:
    """Delete the resident and everything stored about them."""
    for table in (OutboxMessage, DialogueState, Expiry, BroadcastRecipient):
        await session.execute(delete(table).where(table.user_id == user.id))
    await session.execute(delete(User).where(User.id == user.id))


async def get_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)
