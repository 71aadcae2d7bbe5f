"""Queries on broadcasts: audiences, materialising batches, progress."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.store import sql
from core.store.models import (
    Broadcast,
    BroadcastBatch,
    BroadcastRecipient,
    Expiry,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    User,
)


def audience_conditions(audience: dict[str, Any], now: datetime) -> list[Any]:
    """WHERE conditions on users for an audience. Updates opt-in and an active chat are
    always required."""
    conditions: list[Any] = [User.updates_opt_in.is_(True), User.active.is_(True)]
    if audience.get("channels"):
        conditions.append(User.channel.in_(audience["channels"]))
    if audience.get("languages"):
        conditions.append(User.language.in_(audience["languages"]))
    expiry_conditions: list[Any] = [Expiry.user_id == User.id]
    if audience.get("document_kinds"):
        expiry_conditions.append(Expiry.kind.in_(audience["document_kinds"]))
    if audience.get("expiry_within_days") is not None:
        today = now.date()
        last = today + timedelta(days=int(audience["expiry_within_days"]))
        expiry_conditions += [Expiry.expires_on >= today, Expiry.expires_on <= last]
    if audience.get("saved_after"):
        expiry_conditions.append(Expiry.created_at >= _day_start(audience["saved_after"]))
    if audience.get("saved_before"):
        expiry_conditions.append(Expiry.created_at < _day_start(audience["saved_before"]))
    if len(expiry_conditions) > 1:
        conditions.append(exists().where(and_(*expiry_conditions)))
    return conditions


def _day_start(value: str | date) -> datetime:
    day = value if isinstance(value, date) else date.fromisoformat(value)
    return datetime(day.year, day.month, day.day).astimezone()


async def count_by_language(
    session: AsyncSession, audience: dict[str, Any], now: datetime
) -> dict[str | None, int]:
    """How many residents of the audience speak each language."""
    result = await session.execute(
        select(User.language, func.count())
        .where(*audience_conditions(audience, now))
        .group_by(User.language)
    )
    return {language: count for language, count in result.all()}


async def audience_page(
    session: AsyncSession, audience: dict[str, Any], now: datetime, *, after: int, limit: int
) -> list[tuple[int, str, str | None]]:
    """The next ``limit`` residents of the audience after user id ``after``:
    (id, channel, language)."""
    connection = await session.connection()  # plain rows: no ORM work for thousands
    result = await connection.execute(
        select(User.id, User.channel, User.language)
        .where(*audience_conditions(audience, now), User.id > after)
        .order_by(User.id)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in result]


async def add_batches(
    session: AsyncSession,
    broadcast_id: int,
    batches: Sequence[tuple[str, str, list[int]]],
    due_at: datetime,
) -> None:
    """Queue batches of (channel, language, user ids), each with its outbox row."""
    if not batches:
        return
    connection = await session.connection()
    ids = (
        (
            await connection.execute(
                insert(BroadcastBatch.__table__).returning(
                    BroadcastBatch.__table__.c.id, sort_by_parameter_order=True
                ),
                [
                    {"broadcast_id": broadcast_id, "channel": c, "language": lang}
                    for c, lang, _ in batches
                ],
            )
        )
        .scalars()
        .all()
    )
    await sql.insert_many(
        session,
        BroadcastRecipient.__table__,
        [
            {"batch_id": batch_id, "user_id": user_id}
            for batch_id, (_, _, user_ids) in zip(ids, batches, strict=True)
            for user_id in user_ids
        ],
    )
    await sql.insert_many(
        session,
        OutboxMessage.__table__,
        [
            {
                "batch_id": batch_id,
                "channel": channel,
                "kind": OutboxKind.BROADCAST,
                "due_at": due_at,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
            }
            for batch_id, (channel, _, _) in zip(ids, batches, strict=True)
        ],
    )


async def batch_recipients(
    session: AsyncSession, batch_ids: Sequence[int]
) -> dict[int, list[tuple[int, str]]]:
    """(user id, platform id) of the residents of each batch who still want updates and
    still have the chat open, in one query."""
    connection = await session.connection()
    result = await connection.execute(
        select(BroadcastRecipient.batch_id, User.id, User.platform_id)
        .join(User, User.id == BroadcastRecipient.user_id)
        .where(
            BroadcastRecipient.batch_id.in_(batch_ids),
            User.active.is_(True),
            User.updates_opt_in.is_(True),
        )
        .order_by(BroadcastRecipient.batch_id, User.id)
    )
    recipients: dict[int, list[tuple[int, str]]] = {}
    for batch_id, user_id, platform_id in result:
        recipients.setdefault(batch_id, []).append((user_id, platform_id))
    return recipients


async def progress(session: AsyncSession, broadcast_id: int) -> dict[str, int]:
    """Residents per outbox state of a broadcast ("blocked": the platform said the
    resident blocked the bot)."""
    result = await session.execute(
        select(
            OutboxMessage.status, OutboxMessage.last_error, func.count(BroadcastRecipient.user_id)
        )
        .join(BroadcastBatch, BroadcastBatch.id == OutboxMessage.batch_id)
        .join(BroadcastRecipient, BroadcastRecipient.batch_id == BroadcastBatch.id)
        .where(BroadcastBatch.broadcast_id == broadcast_id)
        .group_by(OutboxMessage.status, OutboxMessage.last_error)
    )
    counts = {"queued": 0, "sent": 0, "failed": 0, "blocked": 0, "dropped": 0}
    for status, error, count in result.all():
        if status == OutboxStatus.SENT:
            counts["sent"] += count
        elif status == OutboxStatus.DROPPED:
            counts["dropped"] += count
        elif status == OutboxStatus.FAILED:
            counts["blocked" if error and "block" in error.lower() else "failed"] += count
        else:
            counts["queued"] += count
    return counts


async def unfinished_rows(session: AsyncSession, broadcast_id: int) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(OutboxMessage)
        .join(BroadcastBatch, BroadcastBatch.id == OutboxMessage.batch_id)
        .where(
            BroadcastBatch.broadcast_id == broadcast_id,
            OutboxMessage.status.not_in(
                [OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.DROPPED]
            ),
        )
    )
    return int(result.scalar_one())


async def drop_pending(session: AsyncSession, broadcast_id: int, reason: str) -> None:
    batches = select(BroadcastBatch.id).where(BroadcastBatch.broadcast_id == broadcast_id)
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.batch_id.in_(batches),
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED]),
        )
        .values(status=OutboxStatus.DROPPED, last_error=reason, claimed_by=None)
        .execution_options(synchronize_session=False)
    )


async def in_progress(session: AsyncSession) -> list[Broadcast]:
    result = await session.execute(select(Broadcast).where(Broadcast.status == "sending"))
    return list(result.scalars())


async def list_recent(session: AsyncSession, limit: int = 50) -> list[Broadcast]:
    result = await session.execute(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit))
    return list(result.scalars())
