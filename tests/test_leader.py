"""Leadership for singleton work: one replica at a time on PostgreSQL, taken over when it
goes; every process on SQLite (one host)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from core.leader import Leadership
from core.store.db import Database


async def test_one_leader_at_a_time_and_a_successor_when_it_goes(database_url):
    first, second = Database(database_url), Database(database_url)
    await first.upgrade()
    try:
        leader, other = Leadership(first), Leadership(second)
        assert await leader.check()
        if first.is_sqlite:
            assert await other.check()
            return
        assert not await other.check()
        assert await leader.check()  # still leading on the next tick
        await _kill_lock_holders(second)  # the leader's connection dies with its process
        assert await _within_seconds(other.check)
        assert not await leader.check()  # it notices and steps down
        await other.release()
        assert await leader.check()  # a graceful release frees the lock at once
        await leader.release()
    finally:
        await first.dispose()
        await second.dispose()


async def _within_seconds(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.1)):
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def _kill_lock_holders(db: Database) -> None:
    async with db.engine.connect() as connection:
        await connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND (classid::bigint << 32 | objid::bigint) = "
                "hashtextextended('kigen-leader:' || current_schema(), 0)"
            )
        )
