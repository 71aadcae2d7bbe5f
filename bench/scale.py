"""Reminders and a broadcast at scale on PostgreSQL: seed N residents with one expiry
each, plan their reminder ladders, claim the busiest day's reminders (the phases of
bench/reminders.py), then broadcast to all N through a real ``kigen serve`` process.

    .venv/bin/python bench/scale.py [--residents 1000000] [--telegram 6000]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--skip-reminders] [--latency-ms 0]

The run gets a PostgreSQL schema of its own, dropped at the end. The fake LINE and
Telegram servers (tests/fakes) run in a process of their own, limited like the platforms
(LINE: multicast 200 and push 2,000 requests per second; Telegram: 30 messages per second,
one per chat per second; ``--latency-ms`` delays each answer, as the real platforms
are that far away); so do ``kigen serve`` (the leader: it queues the broadcast and
sends it with the real line-bot-sdk and python-telegram-bot) and this process (seeding,
planning, polling). Prints each phase, the sending rates as a share of the platform
limits, the 429s, whether every resident got the broadcast exactly once and in their
language, the peak RSS of each process and the size of each table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from reminders import (  # noqa: E402  (bench/reminders.py)
    START,
    claim_busiest_day,
    deliver_to_null,
    peak_rss_mb,
    plan,
    resident,
    seed,
)
from sqlalchemy import select, text  # noqa: E402
from webhook import SERVERS, Workers, cpu_seconds, database  # noqa: E402  (bench/webhook.py)

from core import broadcast  # noqa: E402
from core.app import Kigen, build  # noqa: E402
from core.clock import FixedClock  # noqa: E402
from core.config import Settings  # noqa: E402
from core.store.models import Broadcast  # noqa: E402

LANGUAGES = ("en", "vi", "zh-Hans", "pt-BR", "id")
TEXTS = {
    "en": "Residence card fees change on 1 April.",
    "vi": "Lệ phí thẻ cư trú thay đổi từ ngày 1/4.",
    "zh-Hans": "在留卡手续费自4月1日起调整。",
    "pt-BR": "As taxas do cartão de residente mudam em 1 de abril.",
    "id": "Biaya kartu izin tinggal berubah mulai 1 April.",
}
AUDIENCE: dict[str, Any] = {"languages": LANGUAGES, "updates_opt_in": True}
LINE_MULTICAST, LINE_PUSH, TELEGRAM = 200, 2000, 30  #: the platforms' limits per second
TELEGRAM_RATE = 29  #: what Kigen is configured to send to Telegram per second


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set of a live process (VmHWM in /proc/PID/status), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---- the fake platforms, in a process of their own ---------------------------------------


def run_fakes(pipe: Connection, latency: float) -> None:
    """Serve FakeLine and FakeTelegram at the platforms' limits, answering ``latency``
    seconds late; send their addresses, then answer one request for a report (see
    :func:`platform_report`)."""
    from tests.fakes.line import FakeLine
    from tests.fakes.telegram import FakeTelegram

    # Without the cyclic collector: a full collection over what the fakes record stalled
    # this process for up to a second; the requests that waited were then stamped at once,
    # a burst that Kigen never sent (the fakes answered it 429).
    gc.disable()
    with FakeLine() as line, FakeTelegram() as telegram:
        line.rate_limit("multicast", LINE_MULTICAST)
        line.rate_limit("pushMessage", LINE_PUSH)
        telegram.rate_limit(per_second=TELEGRAM, per_chat_per_second=1)
        line.delay = telegram.delay = latency
        pipe.send(
            {
                "line_url": line.base_url,
                "line_token": line.access_token,
                "telegram_url": telegram.base_url,
                "telegram_token": telegram.token,
            }
        )
        residents, telegram_count = pipe.recv()
        pipe.send(platform_report(line, telegram, residents, telegram_count))


def sending_rate(times: list[float]) -> tuple[float, float]:
    """(calls per second, seconds) from the first to the last of ``times``."""
    if len(times) < 2:
        return 0.0, 0.0
    span = max(times) - min(times)
    return (len(times) - 1) / span, span


def per_second(times: list[float]) -> list[int]:
    """Calls in each second from the first of ``times``: where the pace dropped."""
    if not times:
        return []
    first = min(times)
    counts = Counter(int(t - first) for t in times)
    return [counts[second] for second in range(max(counts) + 1)]


def platform_report(line: Any, telegram: Any, count: int, telegram_count: int) -> dict:
    """What the fakes saw: accepted calls, rates, 429s, and who got what how often."""
    got: Counter[str] = Counter()
    wrong_text = 0
    report: dict[str, Any] = {}
    for endpoint in ("multicast", "pushMessage"):
        calls = line.calls(endpoint)
        accepted = [r for r in calls if r.accepted]
        report[endpoint] = {
            "accepted": len(accepted),
            "429": sum(r.status == 429 for r in calls),
            "other errors": sum(not r.accepted and r.status != 429 for r in calls),
            "rate": sending_rate([r.time for r in accepted]),
            "max 1 s": line.max_rate_observed(endpoint),
            "per second": per_second([r.time for r in accepted]),
        }
        for request in accepted:
            got.update(request.recipients)
            text = request.messages[0].get("text", "")
            languages = {LANGUAGES[int(user[1:]) % len(LANGUAGES)] for user in request.recipients}
            if len(languages) != 1 or not text.startswith(TEXTS[languages.pop()]):
                wrong_text += 1
    calls = telegram.calls("sendMessage")
    accepted = [r for r in calls if r.ok]
    report["sendMessage"] = {
        "accepted": len(accepted),
        "429": sum(r.status == 429 for r in calls),
        "other errors": sum(not r.ok and r.status != 429 for r in calls),
        "rate": sending_rate([r.timestamp for r in accepted]),
        "max 1 s": telegram.max_rate_observed(),
        "per second": per_second([r.timestamp for r in accepted]),
    }
    for request in accepted:
        chat = str(request.chat_id)
        got[chat] += 1
        language = LANGUAGES[(int(chat) - 10_000_000) % len(LANGUAGES)]
        wrong_text += not request.params["text"].startswith(TEXTS[language])
    expected = {
        resident(i, count, telegram=telegram_count, languages=LANGUAGES)[1] for i in range(count)
    }
    report["residents"] = {
        "expected": len(expected),
        "exactly once": sum(1 for user in expected if got[user] == 1),
        "missing": sum(1 for user in expected if got[user] == 0),
        "more than once": sum(1 for user in expected if got[user] > 1),
        "not in the audience": sum(1 for user in got if user not in expected),
        "calls with a wrong text": wrong_text,
        "violations": len(line.violations) + len(telegram.violations),
    }
    report["peak RSS MB"] = vm_hwm_mb()
    return report


# ---- the phases ----------------------------------------------------------------------------


async def reminders_phase(kigen: Kigen, clock: FixedClock, count: int, telegram: int) -> None:
    started = time.perf_counter()
    await seed(kigen, count, telegram=telegram, **AUDIENCE)
    print(f"seed {count:,} residents and expiries: {time.perf_counter() - started:.1f} s")
    await plan(kigen, clock)
    await claim_busiest_day(kigen, clock, ["line", "telegram"])
    await deliver_to_null(kigen, clock)
    print(f"peak RSS of this process so far: {peak_rss_mb():.0f} MB")


async def broadcast_phase(kigen: Kigen, args: argparse.Namespace, url: str, folder: Path) -> int:
    """Start ``kigen serve``, start a broadcast to everybody, wait until it is done; returns
    the broadcast id."""
    now = datetime.now(UTC)
    broadcast_id = await broadcast.create(kigen.db, now, "ed", title="Fees", texts=TEXTS)
    await broadcast.approve(kigen.db, now, broadcast_id, "boss", "admin", two_person=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIGEN_")}
    env.update(
        KIGEN_DATABASE_URL=url,
        KIGEN_LINE_CHANNEL_SECRET="bench-secret",
        KIGEN_LINE_CHANNEL_ACCESS_TOKEN=args.fakes["line_token"],
        KIGEN_LINE_API_URL=args.fakes["line_url"],
        KIGEN_TELEGRAM_TOKEN=args.fakes["telegram_token"],
        KIGEN_TELEGRAM_API_URL=args.fakes["telegram_url"],
        KIGEN_TELEGRAM_WEBHOOK_SECRET="bench-hook",
        KIGEN_TELEGRAM_RATE=str(TELEGRAM_RATE),
        NO_PROXY="127.0.0.1,localhost",
    )
    if args.line_multicast_rate is not None:
        env["KIGEN_LINE_MULTICAST_RATE"] = str(args.line_multicast_rate)
    with Workers(1, env, folder, SERVERS["kigen"]) as server:
        pid = server.processes[0].pid
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        await broadcast.start(kigen.db, datetime.now(UTC), broadcast_id, "boss")
        deadline = started + args.telegram / TELEGRAM_RATE + 600
        while time.perf_counter() < deadline:
            await asyncio.sleep(2)
            async with kigen.db.session() as session:
                status = (
                    await session.execute(
                        select(Broadcast.status).where(Broadcast.id == broadcast_id)
                    )
                ).scalar_one()
            if status == "done":
                break
        elapsed = time.perf_counter() - started
        print(f"broadcast {status} {elapsed:.1f} s after it was started")
        print(
            f"kigen serve: peak RSS {vm_hwm_mb(pid):.0f} MB, "
            f"CPU {cpu_seconds(pid) - cpu_before:.1f} s"
        )
        log = next(folder.glob("serve-*.log")).read_text(errors="replace")
    problems = [line for line in log.splitlines() if '"level": "info"' not in line]
    print(f"kigen serve log: {len(problems)} warnings or errors")
    for line in problems[:5]:
        print(f"  {line[:200]}")
    return broadcast_id


def print_platforms(report: dict) -> None:
    limits = {"multicast": LINE_MULTICAST, "pushMessage": LINE_PUSH, "sendMessage": TELEGRAM}
    print("sending phase: from the first to the last accepted call of each endpoint")
    for endpoint, limit in limits.items():
        figures = report[endpoint]
        rate, span = figures["rate"]
        print(
            f"  {endpoint:<12} {figures['accepted']:>6,} accepted in {span:6.1f} s: "
            f"{rate:7.1f}/s = {rate / limit:6.1%} of {limit:,}/s; busiest second "
            f"{figures['max 1 s']}; 429s {figures['429']}; other errors {figures['other errors']}"
        )
        if figures["accepted"]:
            seconds = figures["per second"]
            shown = " ".join(map(str, seconds[:40])) + (" ..." if len(seconds) > 40 else "")
            print(f"    per second: {shown}")
    for key, value in report["residents"].items():
        print(f"  residents {key}: {value:,}")
    print(f"fakes process: peak RSS {report['peak RSS MB']:.0f} MB")


async def table_sizes(kigen: Kigen) -> None:
    async with kigen.db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT tablename, pg_total_relation_size(quote_ident(schemaname) || '.' "
                    "|| quote_ident(tablename)) FROM pg_tables "
                    "WHERE schemaname = current_schema() ORDER BY 2 DESC"
                )
            )
        ).all()
    print("database size (pg_total_relation_size: table + indexes + TOAST):")
    for name, size in rows:
        if size >= 1e6:
            print(f"  {name:<24} {size / 1e6:>9,.1f} MB")
    print(f"  {'total (all tables)':<24} {sum(size for _, size in rows) / 1e6:>9,.1f} MB")


async def main(args: argparse.Namespace) -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    fakes = context.Process(target=run_fakes, args=(theirs, args.latency_ms / 1000), name="fakes")
    fakes.start()
    args.fakes = ours.recv()
    folder = Path(tempfile.mkdtemp(prefix="kigen-scale-"))
    print(
        f"{args.residents:,} residents: {args.residents - args.telegram:,} on LINE, "
        f"{args.telegram:,} on Telegram; platforms answer after {args.latency_ms} ms; "
        f"{os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    try:
        with database(args.database_url, folder, "scale") as url:
            clock = FixedClock(START)
            kigen = await build(Settings(_env_file=None, database_url=url), clock)
            try:
                if args.skip_reminders:
                    await seed(kigen, args.residents, telegram=args.telegram, **AUDIENCE)
                else:
                    await reminders_phase(kigen, clock, args.residents, args.telegram)
                await broadcast_phase(kigen, args, url, folder)
                ours.send((args.residents, args.telegram))
                print_platforms(ours.recv())
                await table_sizes(kigen)
            finally:
                await kigen.close()
    finally:
        fakes.terminate()
        fakes.join()
    print(f"this process: peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--telegram", type=int, default=6_000, help="of them on Telegram")
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument(
        "--skip-reminders",
        action="store_true",
        help="seed only, no ladders: a quick look at the broadcast alone",
    )
    parser.add_argument(
        "--line-multicast-rate",
        type=float,
        help="KIGEN_LINE_MULTICAST_RATE (default: Kigen's own, 196 of LINE's 200/s)",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        help="the fakes answer this late (a server far from the platform: 100 to 300 ms)",
    )
    asyncio.run(main(parser.parse_args()))
