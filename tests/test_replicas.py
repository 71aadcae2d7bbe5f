"""Three real ``kigen serve`` processes on one PostgreSQL database deliver 20,000
reminders and a 50,000-resident broadcast to the fake platforms while one process is
killed with SIGKILL and restarted: every message arrives exactly once, and the Telegram
cap holds across the replicas (only the leader sends to Telegram)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, select

from core import broadcast
from core.store.db import Database
from core.store.models import Expiry, OutboxMessage, User
from tests.fakes.line import FakeLine
from tests.fakes.line import spec_available as line_spec
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram import spec_available as telegram_spec
from tests.helpers import wait_for

LINE_REMINDERS, TELEGRAM_REMINDERS, BROADCAST = 18_000, 2_000, 50_000
TELEGRAM_CAP = 300  # what the fake allows per second; each replica is configured below it

pytestmark = pytest.mark.skipif(
    not (line_spec() and telegram_spec()), reason="../shared/specs not found"
)


def line_id(number: int) -> str:
    return f"U{number:032x}"


async def seed(database_url: str) -> None:
    db = Database(database_url)
    await db.upgrade()
    now = datetime.now(UTC)
    people = [("line", line_id(n), False) for n in range(LINE_REMINDERS)]
    people += [("telegram", str(10_000 + n), False) for n in range(TELEGRAM_REMINDERS)]
    people += [("line", line_id(100_000 + n), True) for n in range(BROADCAST)]
    async with db.engine.begin() as connection:
        for first in range(0, len(people), 10_000):
            chunk = people[first : first + 10_000]
            await connection.execute(
                insert(User.__table__),
                [
                    {
                        "channel": c,
                        "platform_id": p,
                        "language": "en",
                        "language_chosen": True,
                        "updates_opt_in": updates,
                        "active": True,
                        "reminder_hour": 9,
                        "timezone": "Asia/Tokyo",
                        "created_at": now,
                        "consent_at": now,
                    }
                    for c, p, updates in chunk
                ],
            )
    async with db.session() as session:
        reminded = (
            await session.execute(
                select(User.id, User.channel)
                .where(User.updates_opt_in.is_(False))
                .order_by(User.id)
            )
        ).all()
    async with db.engine.begin() as connection:
        expiry_ids = (
            (
                await connection.execute(
                    insert(Expiry.__table__).returning(
                        Expiry.__table__.c.id, sort_by_parameter_order=True
                    ),
                    [
                        {
                            "user_id": uid,
                            "kind": "residence_card",
                            "expires_on": date(2027, 3, 15),
                            "status": "active",
                            "created_at": now,
                        }
                        for uid, _ in reminded
                    ],
                )
            )
            .scalars()
            .all()
        )
        await connection.execute(
            insert(OutboxMessage.__table__),
            [
                {
                    "user_id": uid,
                    "channel": channel,
                    "kind": "reminder",
                    "expiry_id": eid,
                    "step": "window",
                    "about_date": date(2027, 3, 15),
                    "due_at": now - timedelta(minutes=1),
                    "stale_at": now + timedelta(days=1),
                    "status": "pending",
                    "attempts": 0,
                }
                for (uid, channel), eid in zip(reminded, expiry_ids, strict=True)
            ],
        )
    broadcast_id = await broadcast.create(db, now, "ed", title="Fees", texts={"en": "Fees change."})
    await broadcast.approve(db, now, broadcast_id, "boss", "admin", two_person=True)
    await broadcast.start(db, now, broadcast_id, "boss")
    await db.dispose()


def start(database_url: str, line: FakeLine, telegram: FakeTelegram, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "KIGEN_DATABASE_URL": database_url,
        "KIGEN_LINE_CHANNEL_SECRET": "replica-secret",
        "KIGEN_LINE_CHANNEL_ACCESS_TOKEN": line.access_token,
        "KIGEN_LINE_API_URL": line.base_url,
        "KIGEN_TELEGRAM_TOKEN": telegram.token,
        "KIGEN_TELEGRAM_API_URL": telegram.base_url,
        "KIGEN_TELEGRAM_WEBHOOK_SECRET": "replica-hook",
        "KIGEN_TELEGRAM_RATE": "250",
        "KIGEN_DELIVERY_INTERVAL_SECONDS": "0.2",
        "KIGEN_CLAIM_LEASE_SECONDS": "20",
        "KIGEN_LOG_LEVEL": "ERROR",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def healthy(client: httpx.Client, port: int) -> dict | None:
    try:
        return client.get(f"http://127.0.0.1:{port}/healthz").json()
    except httpx.HTTPError:
        return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
async def test_three_replicas_deliver_everything_once_through_a_kill(database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("replicas share one database through PostgreSQL")
    await seed(database_url)
    # One client for every health check: a new one per call builds an SSL context, which
    # takes the CPU the fakes need.
    with FakeLine() as line, FakeTelegram() as telegram, httpx.Client(timeout=2) as client:
        telegram.rate_limit(per_second=TELEGRAM_CAP, per_chat_per_second=1)
        ports = [free_port() for _ in range(3)]
        processes = [start(database_url, line, telegram, port) for port in ports]
        try:
            assert wait_for(lambda: all(healthy(client, p) for p in ports), 60)
            assert wait_for(lambda: len(line.pushes()) > LINE_REMINDERS // 4, 120, interval=0.2)
            victim = next(i for i, port in enumerate(ports) if not healthy(client, port)["leader"])
            processes[victim].send_signal(signal.SIGKILL)
            processes[victim].wait()
            processes[victim] = start(database_url, line, telegram, ports[victim])

            def done() -> bool:
                reached_line = sum(
                    len(r.recipients)
                    for r in line.calls()
                    if r.accepted and r.endpoint in ("pushMessage", "multicast")
                )
                reached_telegram = sum(1 for r in telegram.calls("sendMessage") if r.ok)
                return (
                    reached_line >= LINE_REMINDERS + BROADCAST
                    and reached_telegram >= TELEGRAM_REMINDERS
                )

            # Counting every recorded call is not free: look twice a second, not 20 times.
            assert wait_for(done, 300, interval=0.5)
            time.sleep(3)  # anything still to come would arrive now
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
        reached = [
            u
            for r in line.calls()
            if r.accepted and r.endpoint in ("pushMessage", "multicast")
            for u in r.recipients
        ]
        assert len(reached) == len(set(reached)) == LINE_REMINDERS + BROADCAST
        chats = [r.chat_id for r in telegram.calls("sendMessage") if r.ok]
        assert len(chats) == len(set(chats)) == TELEGRAM_REMINDERS
        assert telegram.max_rate_observed() <= TELEGRAM_CAP
        assert all(len(r.recipients) <= 500 for r in line.multicasts())
        line.assert_no_violations()
        telegram.assert_no_violations()
