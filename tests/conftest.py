"""Shared fixtures: a fresh SQLite database per test, a fixed clock, Kigen's core."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from core.app import Kigen, build
from core.clock import FixedClock
from core.config import Settings
from tests.helpers import Chat

JST = ZoneInfo("Asia/Tokyo")

# Fakes run on 127.0.0.1: never send test traffic through a proxy.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ.setdefault("PTB_TIMEDELTA", "true")


POSTGRES = os.environ.get(
    "KIGEN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reason() -> str | None:
    """Why the PostgreSQL runs are skipped, or None when a server answers."""
    if os.environ.get("KIGEN_TEST_POSTGRES") == "":
        return "KIGEN_TEST_POSTGRES is empty: PostgreSQL runs are switched off"
    try:
        import psycopg

        url = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, connect_timeout=3):
            return None
    except Exception as error:
        return f"no PostgreSQL at {POSTGRES.split('@')[-1]} ({type(error).__name__})"


POSTGRES_SKIP = _postgres_reason()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` first: the suite runs on several workers (pytest-xdist), and a
    two-minute test handed out last would leave the other workers idle at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh database per test: a SQLite file, or a schema of its own in PostgreSQL
    (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'kigen.db'}"
        return
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(database_url=database_url, _env_file=None)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 25, 10, 0, tzinfo=JST))


@pytest_asyncio.fixture
async def kigen(settings, clock) -> Kigen:
    app = await build(settings, clock)
    yield app
    await app.close()


@pytest.fixture
def chat(kigen) -> Chat:
    return Chat(kigen.conversation)
