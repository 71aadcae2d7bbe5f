"""A real ``kigen serve`` process killed with SIGKILL mid-delivery and restarted: every
reminder reaches the (fake) LINE platform exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.store import expiries, users
from core.store.db import Database
from core.store.models import OutboxMessage
from tests.fakes.line import FakeLine, spec_available
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(not spec_available(), reason="../shared/specs/line/ not found")

RESIDENTS = 60


async def due_now(database_url: str) -> None:
    """RESIDENTS LINE users, each with one reminder due a minute ago."""
    db = Database(database_url)
    await db.upgrade()
    now = datetime.now(UTC)
    async with db.session() as session:
        for number in range(RESIDENTS):
            user, _ = await users.get_or_create_user(session, "line", f"U{number:032d}", now)
            user.language = "en"
            expiry = await expiries.add_expiry(
                session, user.id, "residence_card", date(2027, 3, 15), now
            )
            session.add(
                OutboxMessage(
                    user_id=user.id,
                    channel="line",
                    kind="reminder",
                    expiry_id=expiry.id,
                    step="window",
                    about_date=expiry.expires_on,
                    due_at=now - timedelta(minutes=1),
                    stale_at=now + timedelta(days=1),
                )
            )
    await db.dispose()


def start(database_url: str, line: FakeLine) -> subprocess.Popen:
    env = {
        **os.environ,
        "KIGEN_DATABASE_URL": database_url,
        "KIGEN_LINE_CHANNEL_SECRET": "crash-test-secret",
        "KIGEN_LINE_CHANNEL_ACCESS_TOKEN": line.access_token,
        "KIGEN_LINE_API_URL": line.base_url,
        "KIGEN_DELIVERY_INTERVAL_SECONDS": "0.2",
        "KIGEN_CLAIM_LEASE_SECONDS": "2",
        # Paced, so that the pushes take three seconds and the kill lands among them.
        "KIGEN_LINE_PUSH_RATE": "20",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_sigkill_mid_delivery_loses_nothing_and_doubles_nothing(database_url):
    await due_now(database_url)
    with FakeLine() as line:
        line.delay = 0.05  # LINE accepts the push, then answers slowly: a kill often lands here
        first = start(database_url, line)
        try:
            assert wait_for(lambda: len(line.pushes()) >= RESIDENTS // 3, 60), first.stderr
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        pushed_before_restart = len(line.pushes())
        assert pushed_before_restart < RESIDENTS
        second = start(database_url, line)
        try:
            everyone = lambda: all(line.delivered_to(f"U{n:032d}") for n in range(RESIDENTS))  # noqa: E731
            assert wait_for(everyone, 90)
            await asyncio.sleep(3)  # anything still to come would arrive now
        finally:
            second.terminate()
            second.wait(timeout=30)
        for number in range(RESIDENTS):
            assert len(line.delivered_to(f"U{number:032d}")) == 1
        repeats = [r for r in line.pushes() if r.status == 409]
        line.assert_no_violations()
    db = Database(database_url)
    async with db.session() as session:
        sent = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
        )
    await db.dispose()
    assert sent == RESIDENTS
    print(f"killed after {pushed_before_restart} pushes; {len(repeats)} repeat(s) dropped")
