"""APScheduler jobs: queue broadcasts, deliver the outbox and write question counts every
few seconds; once a day, plan any missing reminders and apply the retention periods.

Jobs live in memory; the work lives in the database, so any number of processes can run
these jobs side by side (the outbox claim shares rows out between them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core import broadcast, housekeeping, reminders
from core.app import Kigen
from core.leader import Leadership
from core.outbox import Delivery


def start_scheduler(kigen: Kigen, delivery: Delivery, leadership: Leadership) -> AsyncIOScheduler:
    """Start the jobs on the running event loop; the caller shuts the scheduler down."""
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    scheduler.add_job(
        delivery.tick,
        "interval",
        seconds=kigen.settings.delivery_interval_seconds,
        id="deliver",
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        one_at_a_time(_materialise),
        "interval",
        seconds=kigen.settings.delivery_interval_seconds,
        args=[kigen, leadership],
        id="broadcasts",
        next_run_time=datetime.now(UTC),
        max_instances=2,  # see one_at_a_time
    )
    scheduler.add_job(
        _plan,
        "cron",
        hour=3,
        minute=0,
        timezone=ZoneInfo("Asia/Tokyo"),
        args=[kigen, leadership],
        id="plan",
    )
    scheduler.add_job(
        _housekeeping,
        "cron",
        hour=3,
        minute=30,
        timezone=ZoneInfo("Asia/Tokyo"),
        args=[kigen, leadership],
        id="housekeeping",
    )
    scheduler.add_job(
        _flush_question_counts,
        "interval",
        seconds=kigen.settings.delivery_interval_seconds,
        args=[kigen],
        id="question-counts",
    )
    scheduler.start()
    return scheduler


def one_at_a_time(job: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """A tick that finds the previous run still going (queueing a big broadcast takes many
    ticks) returns at once, instead of APScheduler logging a warning that it skipped it."""
    running = asyncio.Lock()

    async def run(*args: object) -> None:
        if running.locked():
            return
        async with running:
            await job(*args)

    return run


async def _flush_question_counts(kigen: Kigen) -> None:
    """Every process writes the question counts it kept in memory (not only the leader)."""
    await kigen.conversation.tally.flush(kigen.db)


async def _plan(kigen: Kigen, leadership: Leadership) -> None:
    if await leadership.check():
        await reminders.plan_missing(kigen.db, kigen.clock.now())


async def _housekeeping(kigen: Kigen, leadership: Leadership) -> None:
    if await leadership.check():
        await housekeeping.run(kigen.db, kigen.settings, kigen.clock)


async def _materialise(kigen: Kigen, leadership: Leadership) -> None:
    if await leadership.check():
        await broadcast.materialise(kigen.db, kigen.clock.now())
