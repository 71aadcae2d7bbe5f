"""One turn at a time per resident across processes.

Two replicas may get two events of one resident at once (a double tap, LINE delivering in
parallel). Each turn reads the dialogue state and writes it back, so the second must wait
for the first, or a date could be saved twice. On PostgreSQL a transaction-level advisory
lock per resident does that; SQLite already runs one writing transaction at a time
(``BEGIN IMMEDIATE``, see :mod:`core.store.db`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.store import events
from core.store.models import ProcessedEvent

#: Named after the schema too, like the leader lock (:mod:`core.leader`).
_LOCK = (
    "pg_advisory_xact_lock(hashtextextended("
    "'kigen-turn:' || current_schema() || ':' || :channel || ':' || :platform_id, 0))"
)
_HOLD = text(f"SELECT {_LOCK}")
# The event is recorded only once the lock is held: a redelivery racing the first delivery
# in another replica waits for it, then finds its event.
_HOLD_AND_RECORD = text(
    f"WITH held AS (SELECT {_LOCK}) "
    "INSERT INTO processed_events (channel, event_id, created_at) "
    "SELECT :channel, :event_id, :created_at FROM held "
    "ON CONFLICT (channel, event_id) DO NOTHING RETURNING id"
).bindparams(bindparam("created_at", type_=ProcessedEvent.__table__.c.created_at.type))


async def begin(
    session: AsyncSession,
    channel: str,
    platform_id: str,
    event_id: str | None,
    now: datetime,
) -> bool:
    """Start a resident's turn: wait until no other process is in one (the lock is held
    until the session's transaction ends), then record the platform's ``event_id``, if
    any. False when that event was handled before (a webhook redelivery).

    On PostgreSQL this is one statement: it runs for every message."""
    if session.bind.dialect.name != "postgresql":
        return event_id is None or await events.first_time(session, channel, event_id, now)
    values = {"channel": channel, "platform_id": platform_id}
    if event_id is None:
        await session.execute(_HOLD, values)
        return True
    values |= {"event_id": event_id, "created_at": now}
    return (await session.execute(_HOLD_AND_RECORD, values)).first() is not None
