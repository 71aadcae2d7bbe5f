"""Inbound event ids already processed, so that a redelivered webhook is handled once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.store import sql
from core.store.models import ProcessedEvent

_TABLE = ProcessedEvent.__table__  # Core, not ORM: this runs for every inbound event
_RECORD = sql.prepared(
    lambda dialect: (
        dialect.insert(_TABLE)
        .on_conflict_do_nothing(index_elements=["channel", "event_id"])
        .returning(_TABLE.c.id)
    )
)


async def first_time(session: AsyncSession, channel: str, event_id: str, now: datetime) -> bool:
    """Record the event; True when it had not been seen before."""
    values = {"channel": channel, "event_id": event_id, "created_at": now}
    return (await session.execute(_RECORD(session), values)).first() is not None
