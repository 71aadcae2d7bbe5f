"""Queries on broadcasts: audiences, materialising batches, progress."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, and_, case, exists, func, insert, literal, select, update
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

#: Recipients read from the database at a time when a claim is rendered.
RECIPIENTS_PART = 5_000


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


async def queue_page(
    session: AsyncSession,
    broadcast_id: int,
    audience: dict[str, Any],
    now: datetime,
    *,
    after: int,
    limit: int,
    languages: Collection[str],
    fallback: str | None,
    batch_sizes: Mapping[str, int],
) -> tuple[int | None, int]:
    """Queue the next ``limit`` residents of the audience after user id ``after``: each in a
    batch of their channel and text language (theirs when the broadcast has it, else
    ``fallback``, else none and they are skipped) of at most ``batch_sizes[channel]``
    residents (1 where not given), and an outbox row per batch due now. Returns the last
    user id of the page (None when no resident is left) and how many were queued.

    The page never leaves the database: reading 20,000 ids into Python and sending them
    back as arrays was the largest piece of the leader's work while it queued a large
    audience (a quarter of its busy time at a million residents). On PostgreSQL it is one
    statement, so the page is seen in one snapshot even when residents change meanwhile;
    SQLite runs its statements in one serialised transaction.
    """
    known = list(languages)
    text_language = case(
        (User.language.in_(known), User.language), else_=literal(fallback, String)
    ).label("language")
    page = (
        select(User.id, User.channel, text_language)
        .where(*audience_conditions(audience, now), User.id > after)
        .order_by(User.id)
        .limit(limit)
        .cte("page")
    )
    # Typed, so that // is the databases' integer division, not FLOOR (which SQLite has
    # only where it was built with its math functions).
    position = func.row_number(type_=Integer).over(
        partition_by=(page.c.channel, page.c.language), order_by=page.c.id
    )
    size = case(dict(batch_sizes), value=page.c.channel, else_=1)
    reached = (
        select(page.c.id, page.c.channel, page.c.language, ((position - 1) // size).label("chunk"))
        .where(page.c.language.is_not(None))
        .cte("reached")
    )
    chunks = select(reached.c.channel, reached.c.language, reached.c.chunk).distinct().subquery()
    summary = select(
        select(func.max(page.c.id)).scalar_subquery(),
        select(func.count()).select_from(reached).scalar_subquery(),
    )
    connection = await session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        batch_id = func.nextval(func.pg_get_serial_sequence(BroadcastBatch.__tablename__, "id"))
    else:
        last_id = await connection.scalar(select(func.coalesce(func.max(BroadcastBatch.id), 0)))
        batch_id = last_id + func.row_number().over(
            order_by=(chunks.c.channel, chunks.c.language, chunks.c.chunk)
        )
    batch = select(batch_id.label("id"), chunks).cte("batch")
    inserts = [
        insert(BroadcastBatch.__table__).from_select(
            ["id", "broadcast_id", "channel", "language"],
            select(batch.c.id, literal(broadcast_id), batch.c.channel, batch.c.language),
        ),
        insert(BroadcastRecipient.__table__).from_select(
            ["batch_id", "user_id"],
            select(batch.c.id, reached.c.id).join(
                batch,
                and_(
                    batch.c.channel == reached.c.channel,
                    batch.c.language == reached.c.language,
                    batch.c.chunk == reached.c.chunk,
                ),
            ),
        ),
        insert(OutboxMessage.__table__).from_select(
            ["batch_id", "channel", "kind", "due_at", "status", "attempts"],
            select(
                batch.c.id,
                batch.c.channel,
                literal(OutboxKind.BROADCAST, String),
                literal(now, OutboxMessage.__table__.c.due_at.type),
                literal(OutboxStatus.PENDING, String),
                literal(0),
            ),
        ),
    ]
    if postgres:
        ctes = [statement.cte(f"insert_{n}") for n, statement in enumerate(inserts)]
        last_user, queued = (await connection.execute(summary.add_cte(*ctes))).one()
        return last_user, queued
    last_user, queued = (await connection.execute(summary)).one()
    if last_user is not None:
        for statement in inserts:
            await connection.execute(statement)
    return last_user, queued


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
    # Each resident is looked up by primary key from the batch's rows. Written as a join,
    # the planner may hash every resident instead: it did on a million residents, with the
    # statistics of a table just filled, at 0.3-0.7 s per claim.
    platform_id = (
        select(User.platform_id)
        .where(
            User.id == BroadcastRecipient.user_id,
            User.active.is_(True),
            User.updates_opt_in.is_(True),
        )
        .scalar_subquery()
    )
    connection = await session.connection()
    query = (
        select(BroadcastRecipient.batch_id, BroadcastRecipient.user_id, platform_id)
        .where(BroadcastRecipient.batch_id.in_(batch_ids))
        .order_by(BroadcastRecipient.batch_id, BroadcastRecipient.user_id)
    )
    recipients: dict[int, list[tuple[int, str]]] = {}
    # In parts: a claim of LINE batches holds up to 100,000 residents, and reading them in
    # one go held the event loop for 50 ms, long enough to cost the sender its pace.
    async with connection.stream(query) as result:
        async for part in result.partitions(RECIPIENTS_PART):
            for batch_id, user_id, chat in part:
                if chat is not None:
                    recipients.setdefault(batch_id, []).append((user_id, chat))
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
