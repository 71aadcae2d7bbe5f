"""One turn at a time per resident across processes.

Two replicas may get two events of one resident at once (a double tap, LINE delivering in
parallel). Each turn reads the dialogue state and writes it back, so the second must wait
for the first, or a date could be saved twice. On PostgreSQL a transaction-level advisory
lock per resident does that; SQLite already runs one writing transaction at a time
(``BEGIN IMMEDIATE``, see :mod:`core.store.db`).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

#: Named after the schema too, like the leader lock (:mod:`core.leader`).
_HOLD = text(
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'kigen-turn:' || current_schema() || ':' || :channel || ':' || :platform_id, 0))"
)


async def hold(session: AsyncSession, channel: str, platform_id: str) -> None:
    """Wait until no other process is in a turn of this resident; held until the
    session's transaction ends."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(_HOLD, {"channel": channel, "platform_id": platform_id})
