"""Queries on the outbox: planning rows, claiming due ones, recording results.

A claim takes due rows for one worker with a lease. On PostgreSQL rows are locked with
``FOR UPDATE SKIP LOCKED`` so replicas share them out; on SQLite the whole claim runs
under ``BEGIN IMMEDIATE`` (see :mod:`core.store.db`), so claimers take turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.store import sql
from core.store.models import Expiry, OutboxKind, OutboxMessage, OutboxStatus, User

SENDING = "sending"  #: handed to the platform; the outcome is not recorded yet


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    step: str
    due_at: datetime
    stale_at: datetime | None


async def replace_reminders(
    session: AsyncSession,
    *,
    user_id: int,
    channel: str,
    expiry_id: int,
    about_date: date,
    planned: Sequence[PlannedReminder],
) -> None:
    """Rewrite the pending reminder rows of one expiry. Rows already handed to a platform
    are history and stay; a step already sent for the same expiry date is not planned
    again."""
    await drop_pending_reminders(session, expiry_id)
    for item in planned:
        await add_reminder(
            session,
            user_id=user_id,
            channel=channel,
            expiry_id=expiry_id,
            about_date=about_date,
            planned=item,
        )


async def add_reminder(
    session: AsyncSession,
    *,
    user_id: int,
    channel: str,
    expiry_id: int,
    about_date: date,
    planned: PlannedReminder,
) -> None:
    """Queue one reminder row; a step already queued or sent for this expiry date is left
    as it is."""
    values = {
        "user_id": user_id,
        "channel": channel,
        "expiry_id": expiry_id,
        "about_date": about_date,
        **_planned_values(planned),
    }
    await insert_reminders(session, [values])


def _planned_values(planned: PlannedReminder) -> dict[str, object]:
    return {
        "kind": OutboxKind.REMINDER,
        "step": planned.step,
        "due_at": planned.due_at,
        "stale_at": planned.stale_at,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
    }


def reminder_values(user: User, expiry: Expiry, planned: PlannedReminder) -> dict[str, object]:
    """The column values of one reminder row, for :func:`insert_reminders`."""
    return {
        "user_id": user.id,
        "channel": user.channel,
        "expiry_id": expiry.id,
        "about_date": expiry.expires_on,
        **_planned_values(planned),
    }


async def insert_reminders(session: AsyncSession, rows: list[dict[str, object]]) -> int:
    """Insert reminder rows in one statement, skipping steps already planned or sent for
    the same expiry date; returns how many were added."""
    return await sql.insert_many(
        session,
        OutboxMessage.__table__,
        rows,
        skip_conflicts_on=["expiry_id", "about_date", "step"],
    )


async def drop_pending_reminders(session: AsyncSession, expiry_id: int) -> None:
    """Delete the rows of an expiry that have not been handed to a platform yet."""
    await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.expiry_id == expiry_id,
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED]),
        )
    )


async def pending_reminders(session: AsyncSession, expiry_id: int) -> list[OutboxMessage]:
    result = await session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.expiry_id == expiry_id, OutboxMessage.status == OutboxStatus.PENDING)
        .order_by(OutboxMessage.due_at)
    )
    return list(result.scalars())


async def add_reply(
    session: AsyncSession,
    *,
    user_id: int,
    channel: str,
    body: list[dict[str, object]],
    due_at: datetime,
    stale_at: datetime,
) -> None:
    """Queue replies that the platform did not take when they were answered."""
    await session.execute(
        insert(OutboxMessage).values(
            user_id=user_id,
            channel=channel,
            kind=OutboxKind.REPLY,
            body=body,
            due_at=due_at,
            stale_at=stale_at,
            status=OutboxStatus.PENDING,
            attempts=0,
        )
    )


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    """Due pending rows, and claimed rows whose worker's lease ran out before sending."""
    return or_(
        and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.due_at <= now),
        and_(OutboxMessage.status == OutboxStatus.CLAIMED, OutboxMessage.lease_until < now),
    )


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    worker: str,
    limit: int,
    lease: timedelta,
    channels: Sequence[str],
) -> list[int]:
    """Claim up to ``limit`` due rows of the given channels for ``worker``; their ids."""
    due = (
        select(OutboxMessage.id)
        .where(_claimable(now), OutboxMessage.channel.in_(channels))
        .order_by(OutboxMessage.due_at, OutboxMessage.id)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = select(due.cte("due").c.id)
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(status=OutboxStatus.CLAIMED, claimed_by=worker, lease_until=now + lease)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return sorted((await session.execute(statement)).scalars())


async def get_rows(session: AsyncSession, ids: Sequence[int]) -> list[OutboxMessage]:
    result = await session.execute(
        select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
    )
    return list(result.scalars())


async def mark_sending(
    session: AsyncSession, row_ids: Sequence[int], worker: str, *, lease_until: datetime
) -> list[int]:
    """Record that rows are about to be handed to the platform, with a lease that starts
    now; the ids this worker still held (a row whose lease was taken over is left out)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(row_ids),
            OutboxMessage.claimed_by == worker,
            OutboxMessage.status == OutboxStatus.CLAIMED,
        )
        .values(status=SENDING, attempts=OutboxMessage.attempts + 1, lease_until=lease_until)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def finish(
    session: AsyncSession,
    row_id: int,
    worker: str,
    *,
    status: str,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
    body: list[dict[str, object]] | None = None,
) -> None:
    """Record the outcome of a row this worker holds.

    ``retry_at`` puts the row back in the queue for that moment, with ``body`` instead of
    its replies if given (those not sent yet).
    """
    values: dict[str, object] = {"claimed_by": None, "lease_until": None, "last_error": error}
    if retry_at is not None:
        values.update(status=OutboxStatus.PENDING, due_at=retry_at)
        if body is not None:
            values["body"] = body
    else:
        values.update(status=status, body=None)
        if status == OutboxStatus.SENT:
            values["sent_at"] = now
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.claimed_by == worker)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def finish_many(
    session: AsyncSession,
    row_ids: Sequence[int],
    worker: str,
    *,
    status: str,
    now: datetime,
    error: str | None = None,
) -> None:
    """Record one final outcome for many rows this worker holds, in one statement."""
    if not row_ids:
        return
    values: dict[str, object] = {
        "status": status,
        "claimed_by": None,
        "lease_until": None,
        "last_error": error,
        "body": None,
    }
    if status == OutboxStatus.SENT:
        values["sent_at"] = now
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(row_ids), OutboxMessage.claimed_by == worker)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def release(session: AsyncSession, row_ids: Sequence[int], worker: str) -> None:
    """Give back rows this worker claimed and never marked as being sent: they are due
    again at once instead of when the claim's lease runs out."""
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(row_ids),
            OutboxMessage.claimed_by == worker,
            OutboxMessage.status == OutboxStatus.CLAIMED,
        )
        .values(status=OutboxStatus.PENDING, claimed_by=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def resolve_interrupted(
    session: AsyncSession, now: datetime, channel: str, *, idempotent: bool, worker: str
) -> int:
    """Settle the rows of a channel whose worker died while sending them (their lease ran
    out mid-send). The rows of ``worker``, the live caller, are its own to record: one may
    outlast its lease waiting out a platform's Retry-After.

    Where the platform drops repeats (LINE's retry key) the row is sent again; elsewhere it
    may already have arrived, so it is recorded as failed rather than risk a second copy: a
    resident gets a reminder at most once.
    """
    stuck = and_(
        OutboxMessage.status == SENDING,
        OutboxMessage.lease_until < now,
        OutboxMessage.channel == channel,
        OutboxMessage.claimed_by.is_distinct_from(worker),
    )
    if idempotent:
        values: dict[str, object] = {"status": OutboxStatus.PENDING}
    else:
        values = {
            "status": OutboxStatus.FAILED,
            "last_error": "interrupted while sending; not repeated",
            "body": None,
        }
    result = await session.execute(
        update(OutboxMessage)
        .where(stuck)
        .values(claimed_by=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
