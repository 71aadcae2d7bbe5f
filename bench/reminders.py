"""Reminders at scale: plan the ladders of N expiries, claim one day's due reminders,
and deliver them to a sender that does nothing.

    .venv/bin/python bench/reminders.py [--expiries 1000000] [--database-url URL]

Prints the time of each phase and the peak RSS of the process. Default database: a new
SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from core import reminders
from core.app import build
from core.clock import FixedClock
from core.config import Settings
from core.outbox import Delivery, Outcome, SendResult
from core.store import outbox
from core.store.models import Expiry, OutboxMessage, User

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
KINDS = ["residence_card", "my_number_card", "e_certificate", "residence_card_pr"]


class NullSender:
    channel = "line"
    idempotent = True
    max_recipients = 500

    async def send(self, recipients, replies, *, key):  # type: ignore[no-untyped-def]
        return SendResult(Outcome.SENT)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed(
    kigen,  # type: ignore[no-untyped-def]
    count: int,
    *,
    now: datetime = START,
    first_expiry: date = date(2027, 3, 1),
    days: int = 1000,
    batch: int = 20_000,
) -> None:
    """``count`` residents with one expiry each, spread over ``days`` from ``first_expiry``."""
    rng = random.Random(7)
    async with kigen.db.engine.begin() as connection:
        for first in range(0, count, batch):
            size = min(batch, count - first)
            await connection.execute(
                insert(User.__table__),
                [
                    {
                        "channel": "line",
                        "platform_id": f"U{first + i:032d}",
                        "language": "en",
                        "language_chosen": True,
                        "consent_at": now,
                        "active": True,
                        "reminder_hour": 9,
                        "timezone": "Asia/Tokyo",
                        "created_at": now,
                    }
                    for i in range(size)
                ],
            )
            await connection.execute(
                insert(Expiry.__table__),
                [
                    {
                        "user_id": first + i + 1,
                        "kind": KINDS[(first + i) % len(KINDS)],
                        "expires_on": first_expiry + timedelta(days=rng.randrange(days)),
                        "status": "active",
                        "created_at": now,
                    }
                    for i in range(size)
                ],
            )


async def main(count: int, database_url: str | None) -> None:
    folder = tempfile.mkdtemp(prefix="kigen-bench-")
    url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
    clock = FixedClock(START)
    kigen = await build(Settings(_env_file=None, database_url=url), clock)
    print(f"database: {url.split('@')[-1]}")

    started = time.perf_counter()
    await seed(kigen, count)
    print(f"seed {count:,} residents and expiries: {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    added = await reminders.plan_missing(kigen.db, clock.now())
    elapsed = time.perf_counter() - started
    print(
        f"plan ladders: {added:,} outbox rows in {elapsed:.1f} s "
        f"({added / elapsed:,.0f} rows/s), peak RSS {peak_rss_mb():.0f} MB"
    )

    async with kigen.db.session() as session:
        busiest = (
            await session.execute(
                select(func.date(OutboxMessage.due_at), func.count())
                .group_by(func.date(OutboxMessage.due_at))
                .order_by(func.count().desc())
                .limit(1)
            )
        ).one()
    day = datetime.fromisoformat(str(busiest[0])).replace(tzinfo=UTC)
    clock.move_to(day + timedelta(hours=1))
    async with kigen.db.session() as session:  # the days before were delivered on their day
        await session.execute(
            OutboxMessage.__table__.update().where(OutboxMessage.due_at < day).values(status="sent")
        )

    started = time.perf_counter()
    async with kigen.db.session() as session:
        claimed = await outbox.claim_due(
            session,
            now=clock.now(),
            worker="bench",
            limit=1_000_000,
            lease=timedelta(minutes=5),
            channels=["line"],
        )
    elapsed = time.perf_counter() - started
    print(f"claim one day's due reminders ({busiest[0]}): {len(claimed):,} rows in {elapsed:.3f} s")

    async with kigen.db.session() as session:  # give them back for the delivery run
        await session.execute(
            OutboxMessage.__table__.update()
            .where(OutboxMessage.id.in_(claimed))
            .values(status="pending", claimed_by=None, lease_until=None)
        )
    delivery = Delivery(
        kigen.db, {"line": NullSender()}, kigen.notices, clock, worker_id="bench", batch_size=500
    )
    started = time.perf_counter()
    delivered = 0
    while handled := await delivery.run_once():
        delivered += handled
    elapsed = time.perf_counter() - started
    print(
        f"deliver to a no-op sender: {delivered:,} rows in {elapsed:.1f} s "
        f"({delivered / elapsed:,.0f} rows/s)"
    )
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    if database_url is None:
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
        print(f"SQLite file: {size / 1e6:,.0f} MB")
    await kigen.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expiries", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.expiries, args.database_url))
