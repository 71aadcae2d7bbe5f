"""LINE webhooks under load: signed text-message events per second through real
``kigen serve`` processes to the fake LINE server, with p50/p99 latency.

    .venv/bin/python bench/webhook.py [--events 5000] [--concurrency 64] [--database-url URL]

The fake LINE Messaging API (tests/fakes/line.py) runs in a thread of this process; each
``kigen serve`` is a subprocess talking to it. Every event comes from a different resident
and carries a realistic question, so each one creates a user and gets an FAQ answer by
reply. The load is sent by ``--concurrency`` async aiohttp clients, first to one process
("one worker"), then alternated between two processes on two ports ("two workers"); each
run starts on a fresh database. Before measuring, ``--warmup`` events per process are sent
and not counted. Prints events/s, p50/p99 latency of the webhook POSTs, the CPU time the
server processes and this process (load generator + fake LINE) used, and checks that
every event was answered 200 and that the fake recorded a reply for each resident.
``--server floor`` runs the same load against bench/webhook_floor.py, a server that only
checks the signature, parses and replies through the SDK: the cost of the plumbing alone.

Default database: a new SQLite file in a temporary folder (both processes of the two-worker
run share it; SQLite serialises writers, so this shows the cost of that, not a real
multi-worker setup). With a PostgreSQL URL (``postgresql+psycopg://...``) each run gets a
schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fakes.line import FakeLine, LineWebhookSender  # noqa: E402

QUESTIONS = [
    "When can I renew my residence card?",
    "Do I have to carry my residence card?",
    "How many days do I have to report a move?",
    "What is the Specified Residence Card?",
    "How do I renew my My Number Card?",
    "My residence card expires next month, what should I do?",
    "Can I use my My Number Card as a health insurance card?",
    "What happens if my period of stay expires while I am applying?",
    "在留カードの更新はいつからできますか？",
    "マイナンバーカードの有効期限はいつですか",
    "Quando posso renovar meu cartão de residente?",
    "¿Cuándo puedo renovar mi tarjeta de residencia?",
    "Kailan ko puwedeng i-renew ang aking residence card?",
    "Kapan saya bisa memperpanjang kartu izin tinggal saya?",
    "Khi nào tôi có thể gia hạn thẻ cư trú?",
    "我的在留卡什么时候可以更新？",
]
#: What answers the webhooks: Kigen itself, or the floor of bench/webhook_floor.py.
SERVERS = {
    "kigen": [sys.executable, "-m", "bot", "serve"],
    "floor": [sys.executable, str(REPO / "bench" / "webhook_floor.py")],
}
STARTUP_TIMEOUT = 120.0
REQUEST_TIMEOUT = 30.0
WARMUP_SECONDS = 60.0


@dataclass
class Result:
    label: str
    requested: int
    events: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    replied: int
    pushed: int
    unanswered: int
    violations: int
    server_cpu: float
    bench_cpu: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def database(url: str | None, folder: Path, name: str) -> Iterator[str]:
    """A fresh database for one run: a SQLite file, or a new PostgreSQL schema."""
    if url is None:
        yield f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
        return
    if not url.startswith("postgresql"):
        yield url
        return
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Workers:
    """``count`` ``kigen serve`` processes on free ports, started one after the other (so
    that only the first runs the migrations)."""

    def __init__(self, count: int, env: dict[str, str], folder: Path, command: list[str]) -> None:
        self.count = count
        self.command = command
        self.env = env
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def __enter__(self) -> Workers:
        try:
            for number in range(self.count):
                self._start(number)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self, number: int) -> None:
        port = free_port()
        log = open(self.folder / f"serve-{port}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [*self.command, "--port", str(port)],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                tail = (self.folder / f"serve-{port}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"kigen serve #{number} exited ({process.returncode}):\n{tail}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kigen serve #{number} did not answer /healthz in time")
            time.sleep(0.1)
        self.urls.append(f"{url}/line/webhook")

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def send_load(
    sender: LineWebhookSender,
    urls: list[str],
    users: list[str],
    concurrency: int,
    max_seconds: float,
) -> tuple[float, list[float], dict[int, int]]:
    """POST one text event per user, ``concurrency`` at a time, alternating the URLs; no
    new event is sent after ``max_seconds``. Returns the wall time, the latencies and the
    count of each status."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(enumerate(users))

    async def client_loop() -> None:
        # aiohttp rather than httpx: this process shares the machine's cores with the
        # server it measures, and with httpx it took 2.0 ms of CPU per event, not 1.2.
        connector = aiohttp.TCPConnector(limit=len(urls))
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            while time.perf_counter() <= deadline:
                item = next(queue, None)
                if item is None:
                    break
                index, user = item
                # Built just before sending: the reply token and timestamp are fresh.
                body = sender.body(sender.text(user, QUESTIONS[index % len(QUESTIONS)]))
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": "LineBotWebhook/2.0",
                    "X-Line-Signature": sender.sign(body),
                }
                started = time.perf_counter()
                try:
                    url = urls[index % len(urls)]
                    async with client.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    deadline = started + max_seconds
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def replies_recorded(fake: FakeLine, users: list[str]) -> tuple[int, int, int]:
    """How many of ``users`` got an accepted reply, how many a push (reply token too old),
    and how many neither."""
    replied: set[str] = set()
    pushed: set[str] = set()
    for request in fake.calls("replyMessage", accepted=True):
        replied.update(request.recipients)
    for request in fake.calls("pushMessage", accepted=True):
        pushed.update(request.recipients)
    wanted = set(users)
    answered = wanted & (replied | pushed)
    return len(wanted & replied), len((wanted & pushed) - replied), len(wanted - answered)


def run(
    label: str,
    workers: int,
    fake: FakeLine,
    args: argparse.Namespace,
    folder: Path,
    tag: str,
) -> Result:
    secret = secrets.token_hex(16)
    with database(args.database_url, folder, tag) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIGEN_")}
        env.update(
            KIGEN_DATABASE_URL=url,
            KIGEN_LINE_CHANNEL_SECRET=secret,
            KIGEN_LINE_CHANNEL_ACCESS_TOKEN=fake.access_token,
            KIGEN_LINE_API_URL=fake.base_url,
            KIGEN_FLOOD_LIMIT_PER_MINUTE="1000000",
        )
        with Workers(workers, env, folder, SERVERS[args.server]) as servers:
            sender = LineWebhookSender(servers.urls[0], secret, fake=fake)
            warm = ["U" + secrets.token_hex(16) for _ in range(args.warmup * workers)]
            asyncio.run(send_load(sender, servers.urls, warm, args.concurrency, WARMUP_SECONDS))
            fake.clear()
            users = ["U" + secrets.token_hex(16) for _ in range(args.events)]
            cpu_before, bench_before = servers.cpu(), time.process_time()
            seconds, latencies, statuses = asyncio.run(
                send_load(sender, servers.urls, users, args.concurrency, args.max_seconds)
            )
            users = users[: len(latencies)]  # the rest was not sent in time
            server_cpu = servers.cpu() - cpu_before
            bench_cpu = time.process_time() - bench_before
            time.sleep(0.5)  # let the fake record the last replies
            replied, pushed, unanswered = replies_recorded(fake, users)
            violations = len(fake.violations)
            fake.clear()
    return Result(
        label,
        args.events,
        len(latencies),
        seconds,
        latencies,
        statuses,
        replied,
        pushed,
        unanswered,
        violations,
        server_cpu,
        bench_cpu,
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(results: list[Result]) -> None:
    header = (
        f"{'run':<12} {'events':>7} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'200':>6} {'replied':>8} {'pushed':>7} {'missing':>8} "
        f"{'server CPU s':>12} {'bench CPU s':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ok = r.statuses.get(200, 0)
        print(
            f"{r.label:<12} {r.events:>7,} {r.events / r.seconds:>9,.0f} "
            f"{percentile(r.latencies, 0.5) * 1000:>8.1f} "
            f"{percentile(r.latencies, 0.99) * 1000:>8.1f} "
            f"{max(r.latencies) * 1000:>8.1f} {ok:>6,} {r.replied:>8,} {r.pushed:>7,} "
            f"{r.unanswered:>8,} {r.server_cpu:>12.1f} {r.bench_cpu:>11.1f}"
        )
    print()
    for r in results:
        others = {s: n for s, n in r.statuses.items() if s != 200}
        problems = []
        if r.events < r.requested:
            problems.append(f"stopped at --max-seconds: {r.requested - r.events:,} events not sent")
        if others:
            problems.append(f"non-200 answers {others} (0 = no answer/timeout)")
        if r.unanswered:
            problems.append(f"{r.unanswered} residents got no reply recorded by the fake")
        if r.violations:
            problems.append(f"{r.violations} LINE API violations recorded by the fake")
        verdict = "; ".join(problems) if problems else "every event 200, every resident replied"
        print(f"{r.label}: {verdict}")
        print(
            f"  {r.seconds:.1f} s wall; server CPU {r.server_cpu / r.seconds:.0%} of one core "
            f"({r.server_cpu / r.events * 1000:.2f} ms per event, so at most "
            f"{r.events / r.server_cpu:,.0f} events/s per core); this process (load "
            f"generator + fake LINE) {r.bench_cpu / r.seconds:.0%} of one core; "
            f"mean latency {statistics.fmean(r.latencies) * 1000:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=100, help="uncounted events per process")
    parser.add_argument("--database-url", help="default: a new SQLite file per run")
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated process counts to run (default 1,2)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=240.0,
        help="stop sending new events after this long in each run (default 240)",
    )
    parser.add_argument(
        "--server",
        choices=sorted(SERVERS),
        default="kigen",
        help="kigen (default), or floor: only signature, parsing and the SDK reply call",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and server logs")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="kigen-webhook-bench-"))
    database_name = (args.database_url or "SQLite file (shared by the processes)").split("@")[-1]
    print(f"server: {args.server}; database: {database_name}")
    print(
        f"{args.events:,} events, concurrency {args.concurrency}, "
        f"{args.warmup} warm-up events per process; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} before"
    )
    print()
    results = []
    with FakeLine() as fake:
        for count in counts:
            label = {1: "one worker", 2: "two workers"}.get(count, f"{count} workers")
            try:
                results.append(run(label, count, fake, args, folder, tag=f"{count}w"))
            except BaseException:
                print(f"server logs and databases kept in {folder}")
                raise
    report(results)
    print(f"load average {os.getloadavg()[0]:.1f} after")
    if args.keep:
        print(f"server logs and databases kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
