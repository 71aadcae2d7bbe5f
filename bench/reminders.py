"""Reminders at scale: plan the ladders of N expiries, claim one day's due reminders,
and deliver them to a sender that does nothing.

    .venv/bin/python bench/reminders.py [--expiries 1000000] [--database-url URL]

Prints the time of each phase and the peak RSS of the process. Default database: a new
SQLite file in a temporary folder. The phases are functions that bench/scale.py reuses.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text

from core import reminders
from core.app import Kigen, build
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
    in_flight = 16

    async def send(self, recipients, replies, *, key):  # type: ignore[no-untyped-def]
        return SendResult(Outcome.SENT)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident(
    index: int, count: int, *, telegram: int = 0, languages: Sequence[str] = ("en",)
) -> tuple[str, str, str]:
    """(channel, platform id, language) of seeded resident ``index`` (from 0) of ``count``:
    ``telegram`` of them, spread evenly, are on Telegram, the others on LINE; languages
    take turns."""
    on_telegram = telegram and (index * telegram) // count != ((index + 1) * telegram) // count
    if on_telegram:
        return "telegram", str(10_000_000 + index), languages[index % len(languages)]
    return "line", f"U{index:032d}", languages[index % len(languages)]


async def seed(
    kigen,  # type: ignore[no-untyped-def]
    count: int,
    *,
    now: datetime = START,
    first_expiry: date = date(2027, 3, 1),
    days: int = 1000,
    batch: int = 20_000,
    telegram: int = 0,
    languages: Sequence[str] = ("en",),
    updates_opt_in: bool | None = None,
) -> None:
    """``count`` residents with one expiry each, spread over ``days`` from ``first_expiry``
    (who is on which channel and speaks what: :func:`resident`)."""
    rng = random.Random(7)
    async with kigen.db.engine.begin() as connection:
        for first in range(0, count, batch):
            size = min(batch, count - first)
            people = [
                resident(first + i, count, telegram=telegram, languages=languages)
                for i in range(size)
            ]
            await connection.execute(
                insert(User.__table__),
                [
                    {
                        "channel": channel,
                        "platform_id": platform_id,
                        "language": language,
                        "language_chosen": True,
                        "consent_at": now,
                        "updates_opt_in": updates_opt_in,
                        "active": True,
                        "reminder_hour": 9,
                        "timezone": "Asia/Tokyo",
                        "created_at": now,
                    }
                    for channel, platform_id, language in people
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
        if connection.dialect.name == "postgresql":
            # Autovacuum would analyze the tables within a minute of such a load; without
            # statistics the planner takes the million residents for a few thousand.
            await connection.execute(text("ANALYZE users, expiries"))


async def plan(kigen: Kigen, clock: FixedClock) -> int:
    """Plan every ladder; prints and returns the number of rows."""
    started = time.perf_counter()
    added = await reminders.plan_missing(kigen.db, clock.now())
    elapsed = time.perf_counter() - started
    print(
        f"plan ladders: {added:,} outbox rows in {elapsed:.1f} s "
        f"({added / elapsed:,.0f} rows/s), peak RSS {peak_rss_mb():.0f} MB"
    )
    return added


async def claim_busiest_day(kigen: Kigen, clock: FixedClock, channels: Sequence[str]) -> list[int]:
    """Move the clock into the day with the most reminders, count the days before as
    delivered, and claim that day's due reminders in one go; prints the time, gives the rows
    back (pending) and returns their ids."""
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
    if not kigen.db.is_sqlite:
        # Those days' rows changed gradually in real life, and autovacuum kept up; here
        # millions changed at once, and their dead index entries would slow every claim.
        started = time.perf_counter()
        async with kigen.db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE outbox"))
        print(
            f"VACUUM ANALYZE outbox after marking the days before sent: "
            f"{time.perf_counter() - started:.1f} s"
        )

    started = time.perf_counter()
    async with kigen.db.session() as session:
        claimed = await outbox.claim_due(
            session,
            now=clock.now(),
            worker="bench",
            limit=1_000_000,
            lease=timedelta(minutes=5),
            channels=list(channels),
        )
    elapsed = time.perf_counter() - started
    print(f"claim one day's due reminders ({busiest[0]}): {len(claimed):,} rows in {elapsed:.3f} s")

    async with kigen.db.session() as session:  # give them back
        await session.execute(
            OutboxMessage.__table__.update()
            .where(OutboxMessage.id.in_(claimed))
            .values(status="pending", claimed_by=None, lease_until=None)
        )
    return claimed


async def deliver_to_null(kigen: Kigen, clock: FixedClock) -> int:
    """Deliver what is due to a sender that does nothing; prints the rate."""
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
    return delivered


async def main(count: int, database_url: str | None) -> None:
    folder = tempfile.mkdtemp(prefix="kigen-bench-")
    url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
    clock = FixedClock(START)
    kigen = await build(Settings(_env_file=None, database_url=url), clock)
    print(f"database: {url.split('@')[-1]}")

    started = time.perf_counter()
    await seed(kigen, count)
    print(f"seed {count:,} residents and expiries: {time.perf_counter() - started:.1f} s")
    await plan(kigen, clock)
    await claim_busiest_day(kigen, clock, ["line"])
    await deliver_to_null(kigen, clock)
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
