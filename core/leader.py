"""Singleton work across replicas: one process at a time holds leadership through a
PostgreSQL advisory lock on a connection of its own; when it dies, its connection closes,
the lock is released and another replica takes over on its next try (within seconds).
With SQLite there is one host, and every process may lead.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.store.db import Database

log = logging.getLogger(__name__)

#: The advisory lock is named after the schema, so that two Kigen deployments sharing a
#: PostgreSQL database in different schemas each have their own leader.
_LOCK_KEY = "hashtextextended('kigen-leader:' || current_schema(), 0)"
LOCK_SQL = f"SELECT pg_try_advisory_lock({_LOCK_KEY})"
UNLOCK_SQL = f"SELECT pg_advisory_unlock({_LOCK_KEY})"


class Leadership:
    """Call :meth:`check` before singleton work; it answers whether this process leads."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._connection: AsyncConnection | None = None

    async def check(self) -> bool:
        if self.db.is_sqlite:
            return True
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("lost the leader connection; stepping down")
                await self._drop()
        try:
            connection = await self.db.engine.connect()
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            got = await connection.scalar(text(LOCK_SQL))
        except Exception:
            log.warning("could not try the leader lock", exc_info=True)
            return False
        if got:
            self._connection = connection
            log.info("this process now leads")
            return True
        await connection.close()
        return False

    @property
    def holding(self) -> bool:
        """Whether this process held leadership at its last check."""
        return self.db.is_sqlite or self._connection is not None

    async def release(self) -> None:
        """Step down at once. (A process that dies releases the lock when PostgreSQL notices
        its connection closed, a moment later.)"""
        if self._connection is not None:
            try:
                await self._connection.execute(text(UNLOCK_SQL))
            except Exception:
                log.debug("unlocking the leader lock failed", exc_info=True)
        await self._drop()

    async def _drop(self) -> None:
        if self._connection is not None:
            try:
                # Discard the connection rather than pool it: the lock lives with it.
                await self._connection.invalidate()
                await self._connection.close()
            except Exception:
                log.debug("closing the leader connection failed", exc_info=True)
            self._connection = None
