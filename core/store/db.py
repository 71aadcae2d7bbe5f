"""The database: an async SQLAlchemy engine, sessions and migrations.

SQLite (the default) serialises writers with ``BEGIN IMMEDIATE`` so that two claimers
of the outbox never take the same row; PostgreSQL uses row locks instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Database:
    """An async engine plus a session factory for one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        connect_args = {"timeout": 30} if self.is_sqlite else {}
        # hide_parameters: a logged database error must not carry residents' data.
        self.engine: AsyncEngine = create_async_engine(
            url, echo=echo, connect_args=connect_args, hide_parameters=True
        )
        if self.is_sqlite:
            _serialise_sqlite_writers(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def upgrade(self) -> None:
        """Bring the schema to the newest migration (run at every start; when the
        database is already current this costs one query, not an Alembic run)."""
        try:
            async with self.engine.connect() as connection:
                current = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        except SQLAlchemyError:
            current = None
        if current != head_revision():
            await asyncio.to_thread(upgrade, self.url)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Stop the driver's implicit BEGIN so that ours below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL survives a crash of the process (not of the machine) and saves
        # an fsync per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def head_revision() -> str:
    """The newest migration's revision id, read from the migration files themselves (the
    one no other migration names as its ``down_revision``)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revisions |= set(re.findall(r"^revision = ['\"](\w+)['\"]", source, re.MULTILINE))
        parents |= set(re.findall(r"^down_revision = ['\"](\w+)['\"]", source, re.MULTILINE))
    (head,) = revisions - parents
    return head


def sync_url(url: str) -> str:
    """The URL of the same database for a synchronous driver (used by Alembic)."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (synchronously)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
