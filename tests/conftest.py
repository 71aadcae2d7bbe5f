"""Shared fixtures: a fresh SQLite database per test, a fixed clock, Kigen's core."""

from __future__ import annotations

import os
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


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'kigen.db'}"


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
