"""Leadership for singleton work: one replica at a time on PostgreSQL, taken over when it
goes; every process on SQLite (one host)."""

from __future__ import annotations

from sqlalchemy import text

from core.leader import Leadership
from core.store.db import Database
from tests.helpers import wait_for_async


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
        assert await wait_for_async(other.check, 5)
        assert not await leader.check()  # it notices and steps down
        await other.release()
        assert await leader.check()  # a graceful release frees the lock at once
        await leader.release()
    finally:
        await first.dispose()
        await second.dispose()


async def _kill_lock_holders(db: Database) -> None:
    async with db.engine.connect() as connection:
        await connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND (classid::bigint << 32 | objid::bigint) = "
                "hashtextextended('kigen-leader:' || current_schema(), 0)"
            )
        )
