"""Reminders across a restart: one APScheduler job per reminder in a SQLAlchemyJobStore
(the common alternative in bot tutorials) against Kigen's outbox.

    .venv/bin/python bench/apscheduler_comparison.py [--sizes 10000,100000,1000000]
                                                     [--budget 540]

For each size N and each system, one subprocess writes N reminders spread over the next
3 years into a fresh SQLite file, 1% of them due 1 minute ago (what fell due while the
process was down); then a new subprocess starts on that file as a restarted process would,
and this one measures:

* APScheduler 3.11: ``AsyncIOScheduler`` with ``SQLAlchemyJobStore(url="sqlite:///...")``,
  one ``date`` job per reminder (``remind(user_id)``, id ``reminder:<i>``), job defaults
  left as tutorials leave them (``misfire_grace_time`` 1 s). Start-up lasts until
  ``scheduler.start()`` has returned and the first wakeup has been processed; the run
  then listens for EVENT_JOB_EXECUTED and EVENT_JOB_MISSED for a few seconds. A second
  run whose jobs were added with ``misfire_grace_time=None`` (up to ``--nograce-max``)
  shows the setting that makes APScheduler run late jobs. The setting is stored with
  each job: changing ``job_defaults`` at the restart does not help jobs already stored.
* Kigen: N outbox rows planned by ``core.reminders.plan_missing`` (residents and expiries
  are seeded first with bulk inserts, like bench/reminders.py); the overdue rows are due
  1 minute ago with a ``stale_at`` a day ahead. Start-up is ``core.app.build`` plus the
  first ``Delivery.run_once`` (default batch of 200) with a sender that only counts;
  ``run_once`` is then repeated until nothing is due.

Besides the times, each restart reports its peak RSS and the longest the event loop was
blocked (a 10 ms ticker): APScheduler's SQLAlchemyJobStore is synchronous and runs in the
loop's thread, so a long first wakeup holds up everything else the process serves.

Set-up adds the N jobs with ``scheduler.add_job`` on a paused scheduler; to keep the run
bounded the job store's connections skip fsync during set-up (``synchronous=OFF``, journal
in memory). The rate of ``add_job`` with APScheduler's defaults (one fsync'd transaction
per job) is measured separately on a small sample and printed. Start-up and catch-up times
exclude interpreter start and imports. Each size is skipped when the previous one
suggests it cannot finish within ``--budget`` seconds (all sizes together).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SCRIPT = Path(__file__).resolve()
THREE_YEARS = 3 * 365 * 24 * 3600
OVERDUE_EVERY = 100  #: 1% of the reminders fell due while the process was down
STEPS_PER_LADDER = 6  #: window, month, two weeks, week, day, after
LISTEN_SECONDS = 3.0
MAX_LISTEN_SECONDS = 30.0
DEFAULT_RATE_SAMPLE = 300

calls = 0


async def remind(user_id: str) -> None:
    """The job of the alternative: one reminder to one user (here it only counts)."""
    global calls
    calls += 1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def is_overdue(index: int) -> bool:
    return index % OVERDUE_EVERY == 0


class StallMeter:
    """The longest time the event loop did not get round to a 10 ms tick: how long other
    work (webhooks, a bot's updates) would have waited meanwhile."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.longest = max(self.longest, time.perf_counter() - before - 0.01)

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return self.longest


# ---- APScheduler -------------------------------------------------------------------------


def aps_setup(folder: Path, count: int, grace: str) -> dict[str, object]:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from sqlalchemy import create_engine, event

    engine = create_engine(f"sqlite:///{folder / 'jobs.db'}")

    @event.listens_for(engine, "connect")
    def _fast_load(connection, _record) -> None:  # type: ignore[no-untyped-def]
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA journal_mode=MEMORY")

    async def main() -> float:
        defaults = {} if grace == "default" else {"misfire_grace_time": None}
        scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine)}, job_defaults=defaults
        )
        scheduler.start(paused=True)  # a paused scheduler stores jobs without running them
        rng = random.Random(7)
        started = time.perf_counter()
        now = datetime.now(UTC)
        for i in range(count):
            if not is_overdue(i):
                run_date = now + timedelta(seconds=rng.uniform(60, THREE_YEARS))
                scheduler.add_job(
                    remind, "date", run_date=run_date, args=[f"U{i:032x}"], id=f"reminder:{i}"
                )
        late = datetime.now(UTC) - timedelta(minutes=1)
        for i in range(0, count, OVERDUE_EVERY):
            scheduler.add_job(
                remind, "date", run_date=late, args=[f"U{i:032x}"], id=f"reminder:{i}"
            )
        elapsed = time.perf_counter() - started
        scheduler.shutdown(wait=False)
        return elapsed

    elapsed = asyncio.run(main())
    engine.dispose()
    size = (folder / "jobs.db").stat().st_size / 1e6
    return {"setup": elapsed, "rows": count, "store_mb": size, "rss": peak_rss_mb()}


def aps_default_rate(folder: Path, count: int) -> dict[str, object]:
    """``add_job`` per second with APScheduler's defaults (each job its own transaction)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    async def main() -> float:
        store = SQLAlchemyJobStore(url=f"sqlite:///{folder / 'sample.db'}")
        scheduler = AsyncIOScheduler(jobstores={"default": store})
        scheduler.start(paused=True)
        later = datetime.now(UTC) + timedelta(days=30)
        started = time.perf_counter()
        for i in range(count):
            scheduler.add_job(remind, "date", run_date=later, args=[str(i)], id=f"reminder:{i}")
        elapsed = time.perf_counter() - started
        scheduler.shutdown(wait=False)
        return elapsed

    return {"rate": count / asyncio.run(main())}


def aps_restart(folder: Path, count: int) -> dict[str, object]:
    from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    # Due at the restart: the 1% made overdue, and any job whose moment came while the
    # set-up ran (run dates start 1 minute ahead).
    with sqlite3.connect(folder / "jobs.db") as connection:
        query = "SELECT count(*) FROM apscheduler_jobs WHERE next_run_time <= ?"
        overdue = connection.execute(query, (time.time(),)).fetchone()[0]
    counts = {"executed": 0, "missed": 0}
    last_event = [0.0]

    def listener(event) -> None:  # type: ignore[no-untyped-def]
        counts["executed" if event.code == EVENT_JOB_EXECUTED else "missed"] += 1
        last_event[0] = time.perf_counter()

    class Scheduler(AsyncIOScheduler):
        first_wakeup: float | None = None

        def _process_jobs(self):  # type: ignore[no-untyped-def]
            wait = super()._process_jobs()
            if self.first_wakeup is None:
                self.first_wakeup = time.perf_counter()
            return wait

    async def main() -> dict[str, object]:
        started = time.perf_counter()
        scheduler = Scheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{folder / 'jobs.db'}")}
        )
        scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
        stalls = StallMeter()
        stalls.start()
        scheduler.start()
        returned = time.perf_counter() - started
        while scheduler.first_wakeup is None:
            await asyncio.sleep(0.001)
        startup = scheduler.first_wakeup - started
        deadline = scheduler.first_wakeup + MAX_LISTEN_SECONDS
        listen_until = scheduler.first_wakeup + LISTEN_SECONDS
        while time.perf_counter() < listen_until or (
            counts["executed"] + counts["missed"] < overdue and time.perf_counter() < deadline
        ):
            await asyncio.sleep(0.05)
        scheduler.shutdown(wait=False)
        return {
            "stall": stalls.stop(),
            "start_returned": returned,
            "startup": startup,
            "caught_up": (last_event[0] or scheduler.first_wakeup) - started,
            "executed": counts["executed"],
            "missed": counts["missed"],
            "calls": calls,
        }

    result = asyncio.run(main())
    with sqlite3.connect(folder / "jobs.db") as connection:
        left = connection.execute("SELECT count(*) FROM apscheduler_jobs").fetchone()[0]
    return {**result, "overdue": overdue, "jobs_left": left, "rss": peak_rss_mb()}


# ---- Kigen -------------------------------------------------------------------------------


def kigen_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'kigen.db'}"


def kigen_setup(folder: Path, count: int) -> dict[str, object]:
    from reminders import seed  # bench/reminders.py: residents and expiries in bulk
    from sqlalchemy import delete, func, select, update

    from core import reminders
    from core.app import build
    from core.config import Settings
    from core.store.models import OutboxMessage

    async def main() -> dict[str, object]:
        started = time.perf_counter()
        kigen = await build(Settings(_env_file=None, database_url=kigen_url(folder)))
        await seed(
            kigen,
            math.ceil(count / STEPS_PER_LADDER),
            now=datetime.now(UTC),
            first_expiry=date.today() + timedelta(days=100),
            days=990,
        )
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        planned = await reminders.plan_missing(kigen.db, datetime.now(UTC))
        setup = time.perf_counter() - started
        async with kigen.db.session() as session:
            await session.execute(delete(OutboxMessage).where(OutboxMessage.id > count))
            now = datetime.now(UTC)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id % OVERDUE_EVERY == 0)
                .values(due_at=now - timedelta(minutes=1), stale_at=now + timedelta(days=1))
            )
            rows = await session.scalar(select(func.count()).select_from(OutboxMessage))
        await kigen.close()
        size = sum(path.stat().st_size for path in folder.iterdir()) / 1e6
        return {"seed": seeded, "setup": setup, "planned": planned, "rows": rows, "store_mb": size}

    return {**asyncio.run(main()), "rss": peak_rss_mb()}


class CountingSender:
    channel = "line"
    idempotent = True
    max_recipients = 500
    in_flight = 16

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, recipients, replies, *, key):  # type: ignore[no-untyped-def]
        from core.outbox import Outcome, SendResult

        self.sent += len(recipients)
        return SendResult(Outcome.SENT)


def kigen_restart(folder: Path, count: int) -> dict[str, object]:
    from sqlalchemy import func, select

    from core.app import build
    from core.config import Settings
    from core.outbox import Delivery
    from core.store.models import OutboxMessage

    async def main() -> dict[str, object]:
        started = time.perf_counter()
        kigen = await build(Settings(_env_file=None, database_url=kigen_url(folder)))
        sender = CountingSender()
        delivery = Delivery(kigen.db, {"line": sender}, kigen.notices, kigen.clock)
        stalls = StallMeter()
        stalls.start()
        handled = await delivery.run_once()
        startup = time.perf_counter() - started
        while more := await delivery.run_once():
            handled += more
        caught_up = time.perf_counter() - started
        stall = stalls.stop()
        overdue = OutboxMessage.id % OVERDUE_EVERY == 0
        async with kigen.db.session() as session:
            total = await session.scalar(select(func.count()).where(overdue))
            sent = await session.scalar(
                select(func.count()).where(overdue, OutboxMessage.status == "sent")
            )
            others = await session.scalar(
                select(func.count()).where(~overdue, OutboxMessage.status != "pending")
            )
        await kigen.close()
        return {
            "stall": stall,
            "startup": startup,
            "caught_up": caught_up,
            "executed": sent,
            "overdue": total,
            "handled": handled,
            "calls": sender.sent,
            "touched_early": others,
        }

    return {**asyncio.run(main()), "rss": peak_rss_mb()}


# ---- the parent --------------------------------------------------------------------------


CHILDREN = {
    "aps-setup": lambda folder, n: aps_setup(folder, n, "default"),
    "aps-setup-nograce": lambda folder, n: aps_setup(folder, n, "none"),
    "aps-rate": lambda folder, n: aps_default_rate(folder, n),
    "aps-restart": lambda folder, n: aps_restart(folder, n),
    "kigen-setup": lambda folder, n: kigen_setup(folder, n),
    "kigen-restart": lambda folder, n: kigen_restart(folder, n),
}


class OutOfTime(Exception):
    pass


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        #: How long each child took, by (N, role): what the next size is estimated from.
        self.walls: dict[tuple[int, str], float] = {}

    @property
    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)


def child(
    role: str, folder: Path, count: int, budget: Budget, key: str | None = None
) -> dict[str, object]:
    """Run one role in a new process; its result is the last line of its output."""
    if budget.left <= 0:
        raise OutOfTime(f"no time left for {role}")
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--child", role, str(folder), str(count)],
            capture_output=True,
            text=True,
            timeout=budget.left,
            cwd=SCRIPT.parent.parent,
        )
    except subprocess.TimeoutExpired:
        raise OutOfTime(f"{role} at N={count:,} was stopped at the end of the budget") from None
    if done.returncode != 0:
        raise RuntimeError(f"{role} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    budget.walls[count, key or role] = time.monotonic() - started
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(count: int, budget: Budget, nograce_max: int) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="kigen-aps-bench-") as name:
        aps, nograce, kigen = (Path(name) / sub for sub in ("aps", "aps-nograce", "kigen"))
        for folder in (aps, nograce, kigen):
            folder.mkdir()
        setup = child("aps-setup", aps, count, budget)
        restart = child("aps-restart", aps, count, budget)
        rows.append({"system": "APScheduler (defaults)", **restart, **_only(setup, *SETUP_KEYS)})
        print(
            f"  N={count:,} APScheduler: set-up {setup['setup']:.1f} s, restart "
            f"{restart['startup']:.2f} s, {restart['executed']} run / {restart['missed']} missed",
            flush=True,
        )
        if count <= nograce_max:
            setup = child("aps-setup-nograce", nograce, count, budget)
            restart = child("aps-restart", nograce, count, budget, key="aps-restart-nograce")
            rows.append(
                {"system": "APScheduler, grace None", **restart, **_only(setup, *SETUP_KEYS)}
            )
        setup = child("kigen-setup", kigen, count, budget)
        restart = child("kigen-restart", kigen, count, budget)
        rows.append({"system": "Kigen outbox", **restart, **_only(setup, "seed", *SETUP_KEYS)})
        print(
            f"  N={count:,} Kigen: seed {setup['seed']:.1f} s, plan {setup['setup']:.1f} s "
            f"({setup['rows']:,} rows), restart {restart['startup']:.2f} s, "
            f"{restart['executed']} / {restart['overdue']} overdue delivered",
            flush=True,
        )
    return rows


def expected_seconds(budget: Budget, done: list[int], count: int, nograce_max: int) -> float:
    """How long the steps at ``count`` should take: each step's time extrapolated along the
    line through its times at the first and the last size done (process start, imports and
    listening do not grow with N), or scaled from the only size done."""
    roles = ["aps-setup", "aps-restart", "kigen-setup", "kigen-restart"]
    if count <= nograce_max:
        roles += ["aps-setup-nograce", "aps-restart-nograce"]
    first, last = done[0], done[-1]
    total = 0.0
    for role in roles:
        at_last = budget.walls.get((last, role))
        if at_last is None:  # not run at the last size: the default run stands for it
            at_last = budget.walls[last, role.replace("-nograce", "")]
        if first == last:
            total += at_last * count / last
        else:
            at_first = min(budget.walls.get((first, role), 0.0), at_last)
            total += at_first + (at_last - at_first) * (count - first) / (last - first)
    return total


SETUP_KEYS = ("setup", "store_mb")


def _only(mapping: dict[str, object], *keys: str) -> dict[str, object]:
    return {key: mapping[key] for key in keys}


def report(results: list[tuple[int, list[dict[str, object]]]], skipped: list[str]) -> None:
    header = (
        f"{'N':>9}  {'system':<24} {'set-up s':>9} {'start-up s':>10} {'caught up s':>11} "
        f"{'loop stall s':>12} {'peak RSS MB':>11} {'file MB':>8}  "
        f"{'overdue delivered / total':>25}  notes"
    )
    print(header)
    print("-" * (len(header) + 30))
    for count, rows in results:
        for row in rows:
            delivered = f"{row['executed']:,} / {row['overdue']:,}"
            if "missed" in row:
                notes = (
                    f"{row['missed']:,} missed; start() returned in "
                    f"{row['start_returned']:.2f} s; {row['jobs_left']:,} jobs left in the store"
                )
            else:
                notes = f"seed {row['seed']:.1f} s; {row['touched_early']} rows touched early"
            print(
                f"{count:>9,}  {row['system']:<24} {row['setup']:>9.1f} {row['startup']:>10.2f} "
                f"{row['caught_up']:>11.2f} {row['stall']:>12.2f} {row['rss']:>11.0f} "
                f"{row['store_mb']:>8.0f}  {delivered:>25}  {notes}"
            )
    for line in skipped:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for all sizes")
    parser.add_argument(
        "--nograce-max",
        type=int,
        default=100_000,
        help="largest N for the extra APScheduler run with misfire_grace_time=None",
    )
    parser.add_argument("--child", nargs=3, metavar=("ROLE", "FOLDER", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, folder, count = args.child
        print(json.dumps(CHILDREN[role](Path(folder), int(count))))
        return

    budget = Budget(args.budget)
    sizes = [int(n) for n in args.sizes.split(",")]
    print(f"sizes {', '.join(f'{n:,}' for n in sizes)}; budget {args.budget:.0f} s; SQLite files")
    with tempfile.TemporaryDirectory(prefix="kigen-aps-rate-") as name:
        rate = child("aps-rate", Path(name), DEFAULT_RATE_SAMPLE, budget)["rate"]
    print(
        f"APScheduler add_job with its defaults (one fsync'd transaction per job): "
        f"{rate:,.0f} jobs/s over {DEFAULT_RATE_SAMPLE} jobs; at that rate "
        + ", ".join(f"{n:,} jobs take {n / rate / 60:,.1f} min" for n in sizes),
        flush=True,
    )
    results: list[tuple[int, list[dict[str, object]]]] = []
    skipped: list[str] = []
    done: list[int] = []
    for count in sizes:
        if done:
            estimate = expected_seconds(budget, done, count, args.nograce_max)
            if estimate > budget.left:
                skipped.append(
                    f"N={count:,} skipped: about {estimate:,.0f} s expected (each step "
                    f"extrapolated from N={done[-1]:,}), {budget.left:,.0f} s of the budget left"
                )
                continue
        try:
            results.append((count, measure(count, budget, args.nograce_max)))
        except OutOfTime as error:
            skipped.append(f"N={count:,} skipped: {error}")
            continue
        done.append(count)
    print()
    report(results, skipped)
    print()
    print(
        "start-up: APScheduler until start() returned and the first wakeup was processed; "
        "Kigen build() + the first Delivery.run_once.\ncaught up: until the last overdue "
        "job's event (APScheduler) or until run_once found nothing due (Kigen).\n"
        "loop stall: the longest the event loop was blocked after start() (APScheduler) or "
        "after build() (Kigen).\nfile MB: the SQLite file(s) after set-up (Kigen's holds the "
        "residents and their expiries too)."
    )


if __name__ == "__main__":
    main()
