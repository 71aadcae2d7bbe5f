"""One turn at a time per resident across processes.

Two replicas may get two events of one resident at once (a double tap, LINE delivering in
parallel). Each turn reads the dialogue state and writes it back, so the second must wait
for the first, or a date could be saved twice. On PostgreSQL a transaction-level advisory
lock per resident does that; SQLite already runs one writing transaction at a time
(``BEGIN IMMEDIATE``, see :mod:`core.store.db`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from core.store import events
from core.store.models import ProcessedEvent


class TurnKey(NamedTuple):
    """Whose turn it is, and the platform's id of the event that brought it, if any."""

    channel: str
    platform_id: str
    event_id: str | None


# Named after the schema too, like the leader lock (core.leader). The locks are taken in
# the order of their keys, so that two replicas' batches never wait for each other in a
# circle.
_KEYS = (
    "SELECT channel, platform_id, event_id, hashtextextended("
    "'kigen-turn:' || current_schema() || ':' || channel || ':' || platform_id, 0) AS key "
    "FROM unnest(:channels, :platform_ids, :event_ids) AS k(channel, platform_id, event_id)"
)
_LOCKS = "SELECT count(pg_advisory_xact_lock(key)) FROM (SELECT key FROM keys ORDER BY key) k"
# How long the transaction may wait for any lock, the residents' included.
_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :timeout, true)")
_ARRAYS = [bindparam(name, type_=ARRAY(Text)) for name in ("channels", "platform_ids", "event_ids")]
_HOLD = text(f"WITH keys AS ({_KEYS}) {_LOCKS}").bindparams(*_ARRAYS)
# The events are recorded only once the locks are held: a redelivery racing the first
# delivery in another replica waits for it, then finds its event.
_HOLD_AND_RECORD = text(
    f"WITH keys AS ({_KEYS}), held AS ({_LOCKS}) "
    "INSERT INTO processed_events (channel, event_id, created_at) "
    "SELECT channel, event_id, :created_at FROM keys, held "
    "ON CONFLICT (channel, event_id) DO NOTHING RETURNING channel, event_id"
).bindparams(bindparam("created_at", type_=ProcessedEvent.__table__.c.created_at.type), *_ARRAYS)


async def begin(
    session: AsyncSession, turns: Sequence[TurnKey], now: datetime, lock_wait: float
) -> list[bool]:
    """Start the turns of several residents in one transaction: wait until no other
    process is in a turn of theirs (the locks are held until the session's transaction
    ends; after ``lock_wait`` seconds of waiting for any lock, the transaction fails),
    then record the platforms' event ids. For each turn, False when its event was handled
    before (a webhook redelivery).

    On PostgreSQL the locks and events are one statement, after the one that sets how
    long to wait, when every turn has an event id: they run for every batch of messages."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(_LOCK_TIMEOUT, {"timeout": f"{round(lock_wait * 1000)}ms"})
        values = {
            "channels": [turn.channel for turn in turns],
            "platform_ids": [turn.platform_id for turn in turns],
            "event_ids": [turn.event_id for turn in turns],
        }
        if all(turn.event_id is not None for turn in turns):
            recorded = await session.execute(_HOLD_AND_RECORD, values | {"created_at": now})
            new = {(channel, event_id) for channel, event_id in recorded}
            return [(turn.channel, turn.event_id) in new for turn in turns]
        await session.execute(_HOLD, values)
    return [
        turn.event_id is None or await events.first_time(session, turn.channel, turn.event_id, now)
        for turn in turns
    ]
