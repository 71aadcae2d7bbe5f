"""Leadership for singleton work: one replica at a time on PostgreSQL, taken over when it
goes; every process on SQLite (one host)."""

from __future__ import annotations

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
        await first.dispose()  # the leader's process dies: its connections close
        await leader.release()
        assert await other.check()
        await other.release()
    finally:
        await first.dispose()
        await second.dispose()
