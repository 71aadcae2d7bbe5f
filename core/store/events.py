"""Inbound event ids already processed, so that a redelivered webhook is handled once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.store import sql
from core.store.models import ProcessedEvent


async def first_time(session: AsyncSession, channel: str, event_id: str, now: datetime) -> bool:
    """Record the event; True when it had not been seen before."""
    table = ProcessedEvent.__table__  # Core, not ORM: this runs for every inbound event
    statement = (
        sql.insert(session, table)
        .values(channel=channel, event_id=event_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["channel", "event_id"])
        .returning(table.c.id)
    )
    return (await session.execute(statement)).first() is not None
