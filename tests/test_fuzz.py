"""Hostile input, property-tested: whatever arrives on a channel, a webhook, a console form
or the command line, Kigen never answers 500, never shows a stack trace, and never keeps
half of what it was asked to do.

Hypothesis drives the servers from a worker thread (``asyncio.to_thread``) while they run
in the test's event loop, as in ``tests/test_line.py``; database checks made from that
thread are sent back to the loop with :func:`on_loop`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import re
import string
import subprocess
import sys
import traceback
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.jsonl import answer_line
from bot.serve import KigenServer
from core import operators
from core.app import build
from core.clock import FixedClock
from core.config import Settings
from core.store.db import Database
from core.store.models import AuditEntry, Broadcast, User
from tests.conftest import JST
from tests.fakes.line import FakeLine, LineWebhookSender
from tests.fakes.line import spec_available as line_spec_available
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram import spec_available as telegram_spec_available
from tests.helpers import dump_tables

NOW = datetime(2026, 11, 25, 10, tzinfo=JST)
HUGE = "99999999999999999999"  #: an id beyond any database integer


def fuzz(max_examples: int = 40):
    """Bounded Hypothesis settings for these tests (fixtures are reused across examples
    on purpose: the server, the fakes and the database live for the whole test)."""
    return settings(
        max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck)
    )


def on_loop(loop: asyncio.AbstractEventLoop, coroutine, timeout: float = 60) -> Any:
    """Run ``coroutine`` on the test's event loop from the Hypothesis thread."""
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)


async def count(db: Database, model) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


def no_stack_trace(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:2000])
    assert "Traceback" not in response.text, response.text[:2000]


# -- strategies shared by the tests -------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
#: Numbers as people (and attackers) type them: huge, negative, or "digits" int() refuses.
NUMBERISH = st.one_of(
    st.integers(min_value=-5, max_value=400).map(str),
    st.integers(min_value=10**9, max_value=10**40).map(str),
    st.sampled_from(["", "0", "-1", "1e3", "²", "³", "¹²", "١٢", "٣", "९", "𝟗", " 7 ", "9" * 5000]),
)
TEXTS = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "/start",
            "/remind",
            "/list",
            "/forget",
            "/mydata",
            "/language",
            "/updates",
            "/settings",
            "/cancel",
            "/start faq-carry-card",
            "/start ²",
            "/" + "x" * 300,
            "2027-03-15",
            "15.03.2027",
            "31/02/2027",
            "9999-12-31",
            "0000-00-00",
            "My Number 1234 5678 9012",
            "AB12345678CD",
            "\x00",
            "a\x00b",
            "\u202e\u200b\ufeff",
            "x" * 5000,
        ]
    ),
)
CHOICE_PREFIXES = [
    "lang", "menu", "kind", "consent", "confirm", "date", "renew", "del", "snooze", "stop",
    "cal", "applied", "updates", "hour", "tz", "forget", "faq", "topic",
]  # fmt: skip
CHOICE_WORDS = [
    "en", "ja", "zh-Hans", "pt-BR", "xx", "add", "list", "topics", "language", "updates",
    "privacy", "help", "residence_card", "my_number_card", "yes", "no", "on", "off",
    "picked", "2027-03-15", "Asia/Tokyo", "Etc/GMT+99", "../../etc/passwd", "carry_card",
]  # fmt: skip
CHOICE_VALUES = st.one_of(
    NUMBERISH,
    st.sampled_from(CHOICE_WORDS),
    st.text(max_size=30),
)
CHOICES = st.one_of(
    st.builds(lambda p, v: f"{p}:{v}", st.sampled_from(CHOICE_PREFIXES), CHOICE_VALUES),
    st.text(max_size=64),
)
LANG_HINTS = st.one_of(
    st.sampled_from(["en", "ja", "ja-JP", "zh-Hans", "zh-TW", "pt-BR", "fil", "xx", "", "*"]),
    st.text(max_size=20),
)


def telegram_callback_data() -> st.SearchStrategy[str]:
    """What fits in a Telegram button: 1 to 64 bytes of UTF-8."""
    return CHOICES.map(lambda s: s.encode("utf-8")[:64].decode("utf-8", "ignore") or "x")


# -- 1. the JSON-lines channel ------------------------------------------------------------------


@pytest_asyncio.fixture
async def roomy(database_url) -> Any:
    """Kigen with flood control out of the way, so that every line reaches the flows."""
    settings_ = Settings(
        _env_file=None, database_url=database_url, flood_limit_per_minute=1_000_000
    )
    app = await build(settings_, FixedClock(NOW))
    yield app
    await app.close()


def check_answer(result: Any, number: int) -> None:
    assert isinstance(result, dict), result
    json.dumps(result, ensure_ascii=False)
    json.dumps(result, ensure_ascii=True).encode("ascii")
    if "error" in result:
        assert set(result) == {"error", "line"} and result["line"] == number, result
        assert isinstance(result["error"], str)
    else:
        assert set(result) == {"user", "lang", "replies"}, result
        assert isinstance(result["replies"], list)
    assert "Traceback" not in json.dumps(result)


async def test_jsonl_arbitrary_lines_get_an_error_and_change_nothing(roomy):
    """Any text, or any JSON value: a well-formed answer; a refused line writes nothing."""
    loop = asyncio.get_running_loop()
    lines = st.one_of(
        st.text(max_size=200),
        JSON_VALUES.map(json.dumps),
        st.binary(max_size=100).map(lambda b: b.decode("utf-8", "surrogateescape")),
    )

    @fuzz(50)
    @given(lines, st.integers(min_value=1, max_value=10**9))
    def check(line, number):
        before = on_loop(loop, dump_tables(roomy.db))
        result = on_loop(loop, answer_line(roomy.conversation, line, number))
        check_answer(result, number)
        if "error" in result:
            assert on_loop(loop, dump_tables(roomy.db)) == before

    await asyncio.to_thread(check)


def requests() -> st.SearchStrategy[dict[str, Any]]:
    """Requests that look valid: a user, exactly one of text/choice/date/event, maybe a
    language hint, and now and then a wrong type or an extra key."""
    users = st.one_of(
        st.sampled_from(["u1", "u2", "0", "-1", " u1 ", "u" * 200]),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.text(min_size=1, max_size=80),
    )
    kinds = st.one_of(
        st.tuples(st.just("text"), TEXTS),
        st.tuples(st.just("choice"), CHOICES),
        st.tuples(
            st.just("date"),
            st.one_of(
                st.dates().map(lambda d: d.isoformat()),
                st.sampled_from(["2027-02-29", "20270315", "2027-W01-1", "", "2027-03-15T10:00"]),
                st.text(max_size=12),
            ),
        ),
        st.tuples(
            st.just("event"), st.sampled_from(["follow", "unfollow", "unsupported", "poke", ""])
        ),
    )
    extras = st.dictionaries(
        st.sampled_from(["lang", "extra", "choices", "text", "__proto__"]), JSON_VALUES, max_size=1
    )

    def build_request(user, kind, lang, extra):
        request: dict[str, Any] = {"user": user, kind[0]: kind[1]}
        if lang is not None:
            request["lang"] = lang
        if extra:
            request.update(extra)
        return request

    return st.builds(
        build_request,
        users,
        kinds,
        st.none() | LANG_HINTS,
        st.none() | st.just({}) | extras,
    )


async def test_jsonl_valid_looking_requests_always_get_an_answer(roomy):
    loop = asyncio.get_running_loop()

    @fuzz(60)
    @given(st.lists(requests(), min_size=1, max_size=4))
    def check(batch):
        for number, request in enumerate(batch, start=1):
            line = json.dumps(request, ensure_ascii=False)
            result = on_loop(loop, answer_line(roomy.conversation, line, number))
            check_answer(result, number)

    await asyncio.to_thread(check)


#: Lines that crashed :func:`answer_line` (with the database that did, where only one did).
JSONL_CRASHERS = [
    r'{"user": "u1", "choice": "renew:\u00b2"}',  # "²".isdigit() but int("²") fails
    r'{"user": "u1", "choice": "del:\u00b2"}',
    r'{"user": "u1", "choice": "cal:\u00b2"}',
    r'{"user": "u1", "choice": "snooze:\u00b2"}',
    r'{"user": "u1", "choice": "stop:\u00b2"}',
    r'{"user": "u1", "choice": "applied:\u00b2"}',
    r'{"user": "u1", "choice": "hour:\u00b2"}',
    r'{"user": "u1", "choice": "renew:99999999999999999999"}',  # beyond SQLite's INTEGER
    r'{"user": "u1", "choice": "cal:99999999999999999999"}',
    r'{"user": "u1", "choice": "renew:2147483648"}',  # PostgreSQL: beyond its integer
    r'{"user": "u1", "text": "\u0000"}',  # PostgreSQL: NUL in question_stats.key
    r'{"user": "u\u0000", "text": "hello"}',  # PostgreSQL: NUL in users.platform_id
    r'{"user": "u1", "text": "\ud800 zzz qqq"}',  # a lone surrogate: no database takes it
    r'{"user": "\udcff", "text": "hello"}',
    "[" * 5000,  # json.loads raises RecursionError, not JSONDecodeError
]


@pytest.mark.parametrize(
    "line",
    JSONL_CRASHERS,
    ids=lambda line: line if len(line) < 80 else f"{line[:8]}...x{len(line)}",
)
async def test_jsonl_lines_that_crashed_it(roomy, line):
    check_answer(await answer_line(roomy.conversation, line, 7), 7)


def jsonl_batch(seed: int = 20261125) -> list[bytes]:
    """Generated input lines (bytes): requests, junk, very long lines, NUL bytes, and
    invalid UTF-8; none holds a line break of its own."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    for n in range(40):
        kind = rng.choice(["text", "choice", "date", "event"])
        value = {
            "text": rng.choice(["Do I have to carry my residence card?", "/remind", "/list", "hi"]),
            "choice": rng.choice(["lang:en", "menu:add", "kind:residence_card", "renew:²"]),
            "date": rng.choice(["2027-03-15", "2027-02-30", "tomorrow"]),
            "event": rng.choice(["follow", "unfollow", "poke"]),
        }[kind]
        lines.append(json.dumps({"user": f"u{n % 3}", kind: value}).encode())
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        lines.append(junk.replace(b"\n", b" ").replace(b"\r", b" "))
    lines += [
        b"",
        b"   \t ",
        json.dumps({"user": "u1", "text": "x" * 300_000}).encode(),
        b"{" * 100_000,
        b"[" * 50_000 + b"]" * 50_000,
        b"x" * 2_000_000,
        b'{"user": "u1", "text": "nul \x00 inside"}',
        b'{"user": "u1", "text": "nul \\u0000 escaped"}',
        b"\x00\x00\x00",
        b'{"user": "u1", "text": "caf\xe9 latin-1"}',
        b'{"user": "u\xff\xfe", "text": "hello"}',
        b'{"user": "u1", "text": "\xed\xa0\x80 encoded surrogate"}',
        b'{"user": "u1", "text": "\\ud800 escaped surrogate"}',
        b"\xef\xbb\xbf" + json.dumps({"user": "u1", "text": "after a BOM"}).encode(),
        json.dumps({"user": "u2", "text": "最後の行"}, ensure_ascii=False).encode(),
    ]
    return lines


def test_jsonl_a_real_process_answers_every_line_and_exits_0(database_url, tmp_path):
    lines = jsonl_batch()
    env = {**os.environ, "KIGEN_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--jsonl", "--now", "2026-11-25T10:00:00+09:00"],
        input=b"\n".join(lines) + b"\n",
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    expected = [line for line in lines if line.decode("utf-8", "surrogateescape").strip()]
    out = result.stdout.decode("utf-8").splitlines()
    assert len(out) == len(expected), stderr[-3000:]
    for item in out:
        answer = json.loads(item)
        assert set(answer) in ({"error", "line"}, {"user", "lang", "replies"}), answer


# -- 2. the Telegram webhook --------------------------------------------------------------------

TG_SECRET = "kigen-webhook-secret_1"
CHAT = 4242
#: Headers a fuzzer must not set: they describe the message itself.
FRAMING = {
    "host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te",
    "trailer", "keep-alive", "proxy-connection", "x-telegram-bot-api-secret-token",
    "x-line-signature", "cookie",
}  # fmt: skip
HEADER_NAMES = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=24).filter(
    lambda name: name.lower() not in FRAMING
)


def header_value(raw: bytes) -> bytes:
    """What HTTP/1.1 lets through in a header value: no controls, no edge spaces."""
    return bytes(b for b in raw if b == 0x20 or 0x21 <= b <= 0x7E or b >= 0x80).strip(b" ")


HEADER_VALUES = st.one_of(
    st.text(string.printable.strip(), max_size=40).map(str.encode),
    st.binary(max_size=40).map(header_value),
)
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4)


@pytest.fixture(scope="module")
def fake_telegram():
    if not telegram_spec_available():
        pytest.skip("../shared/specs/telegram/api.json not found")
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def telegram(fake_telegram):
    fake_telegram.reset()
    yield fake_telegram
    fake_telegram.assert_no_violations()


@pytest_asyncio.fixture
async def tg_server(database_url, telegram):
    settings_ = Settings(
        _env_file=None,
        database_url=database_url,
        telegram_token=telegram.token,
        telegram_api_url=telegram.base_url,
        telegram_webhook_secret=TG_SECRET,
        delivery_interval_seconds=3600,
        flood_limit_per_minute=1_000_000,
    )
    app = KigenServer(settings_, port=0, clock=FixedClock(NOW))
    await app.start()
    yield app
    await app.stop()


def telegram_updates(fake: FakeTelegram) -> st.SearchStrategy[dict[str, Any]]:
    """Update-shaped dicts: the fake's own builders, and hand-made ones with random ids,
    texts, chats, callback data, member statuses and unknown keys."""
    ints = st.integers(min_value=-(2**31), max_value=2**31) | st.integers()
    timestamps = st.integers(min_value=0, max_value=2**31) | ints
    chat_ids = st.sampled_from([CHAT, 1, -100123]) | st.integers(-(10**15), 10**15)
    user = st.fixed_dictionaries(
        {"id": st.integers(1, 2**52), "is_bot": st.booleans(), "first_name": st.text(max_size=20)},
        optional={"language_code": LANG_HINTS, "username": st.text(max_size=20)},
    )
    chat = st.fixed_dictionaries(
        {
            "id": chat_ids,
            "type": st.sampled_from(["private", "group", "supergroup", "channel"])
            | st.text(max_size=8),
        }
    )
    unknown = st.dictionaries(
        st.sampled_from(["via_bot", "is_topic_message", "future_field", "x"]),
        JSON_VALUES,
        max_size=2,
    )
    message = st.builds(
        lambda base, extra: {**extra, **base},
        st.fixed_dictionaries(
            {"message_id": ints, "date": timestamps, "chat": chat},
            optional={
                "from": user,
                "text": TEXTS,
                "caption": st.text(max_size=50),
                "entities": st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.sampled_from(["bot_command", "url", "bold"]),
                            "offset": ints,
                            "length": ints,
                        }
                    ),
                    max_size=2,
                ),
            },
        ),
        unknown,
    )
    status = st.sampled_from(["member", "kicked", "left", "administrator", "restricted"]) | st.text(
        max_size=10
    )
    member = st.fixed_dictionaries({"status": status, "user": user}, optional={"until_date": ints})
    callback = st.fixed_dictionaries(
        {
            "id": st.text(min_size=1, max_size=20),
            "from": user,
            "chat_instance": st.text(max_size=20),
        },
        optional={"data": telegram_callback_data(), "message": message},
    )
    my_chat_member = st.fixed_dictionaries(
        {
            "chat": chat,
            "from": user,
            "date": timestamps,
            "old_chat_member": member,
            "new_chat_member": member,
        }
    )
    hand_made = st.builds(
        lambda base, extra: {**extra, **base},
        st.fixed_dictionaries(
            {"update_id": ints},
            optional={
                "message": message,
                "edited_message": message,
                "callback_query": callback,
                "my_chat_member": my_chat_member,
            },
        ),
        st.dictionaries(
            st.sampled_from(["poll", "unknown_kind", "chat_boost"]), JSON_VALUES, max_size=1
        ),
    )
    builders = st.one_of(
        st.builds(fake.make_message_update, chat_ids, TEXTS, st.none() | LANG_HINTS),
        st.builds(
            lambda chat_id, command, args: fake.make_command_update(chat_id, command, args),
            chat_ids,
            st.sampled_from(["start", "remind", "list", "forget", "mydata", "language", "x"]),
            st.text(max_size=30),
        ),
        st.builds(
            fake.make_callback_update,
            chat_ids,
            telegram_callback_data(),
            st.integers(min_value=1, max_value=10**6),
        ),
        st.builds(fake.make_my_chat_member_update, chat_ids, st.sampled_from(["kicked", "member"])),
    )
    with_ids = st.builds(
        lambda update, update_id: {**update, "update_id": update_id}, builders, ints
    )
    return st.one_of(builders, with_ids, hand_made)


def wrong_secrets() -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.none(),
        st.just(b""),
        st.sampled_from(
            [TG_SECRET.upper(), TG_SECRET + "x", TG_SECRET[:-1], " " + TG_SECRET, "x" + TG_SECRET]
        ).map(lambda s: s.strip().encode()),
        HEADER_VALUES,
        st.binary(min_size=1, max_size=40).map(header_value),
    ).filter(lambda s: s is None or s != TG_SECRET.encode())


async def test_telegram_a_webhook_without_the_secret_is_403_and_changes_nothing(
    telegram, tg_server
):
    loop = asyncio.get_running_loop()
    url = f"{tg_server.url}/telegram/webhook"
    bodies = st.one_of(
        telegram_updates(telegram).map(lambda u: json.dumps(u).encode()),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
    )

    @fuzz(50)
    @given(wrong_secrets(), bodies, HEADERS)
    def check(secret, body, headers):
        headers = dict(headers)
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        before = on_loop(loop, dump_tables(tg_server.kigen.db))
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        no_stack_trace(response)
        assert response.status_code == 403
        assert on_loop(loop, dump_tables(tg_server.kigen.db)) == before

    await asyncio.to_thread(check)
    assert await count(tg_server.kigen.db, User) == 0
    assert telegram.sent_texts() == []


async def test_telegram_random_json_bodies_with_the_secret_never_500(telegram, tg_server):
    """Refused bodies (400) change nothing."""
    loop = asyncio.get_running_loop()
    url = f"{tg_server.url}/telegram/webhook"
    bodies = st.one_of(
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"update_id": JSON_SCALARS}).map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
    )

    @fuzz(40)
    @given(bodies, HEADERS)
    def check(body, headers):
        headers = {**headers, "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
        before = on_loop(loop, dump_tables(tg_server.kigen.db))
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        no_stack_trace(response)
        assert response.status_code in (200, 400), response.status_code
        if response.status_code == 400:
            assert on_loop(loop, dump_tables(tg_server.kigen.db)) == before

    await asyncio.to_thread(check)


async def test_telegram_update_shaped_dicts_with_the_secret_never_500(telegram, tg_server):
    url = f"{tg_server.url}/telegram/webhook"

    @fuzz(50)
    @given(telegram_updates(telegram))
    def check(update):
        response = httpx.post(
            url,
            content=json.dumps(update),  # NaN and Infinity too, which httpx's json= refuses
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
            timeout=30,
        )
        no_stack_trace(response)
        assert response.status_code in (200, 400), response.status_code

    await asyncio.to_thread(check)


#: Webhook requests that got a 500: (secret header, body, the statuses that are right).
TELEGRAM_CRASHERS = {
    "non-ASCII secret": (b"\x80", b"{}", {403}),
    "non-ASCII secret, Latin-1": ("é".encode("latin-1"), b"{}", {403}),
    "poll is a list": (TG_SECRET.encode(), b'{"update_id": 1, "poll": []}', {200, 400}),
    "message is a string": (TG_SECRET.encode(), b'{"update_id": 2, "message": "x"}', {200, 400}),
    "message is a list": (TG_SECRET.encode(), b'{"update_id": 3, "message": []}', {200, 400}),
    "date beyond year 9999": (
        TG_SECRET.encode(),
        b'{"update_id": 4, "message": {"message_id": 1, "date": 1000000000000,'
        b' "chat": {"id": 4242, "type": "private"}, "text": "hi"}}',
        {200, 400},
    ),
    "callback from is a list": (
        TG_SECRET.encode(),
        b'{"update_id": 5, "callback_query": {"id": "1", "from": [], "chat_instance": "1"}}',
        {200, 400},
    ),
    "JSON nested 5000 deep": (TG_SECRET.encode(), b"[" * 5000, {400}),
    "date far beyond year 9999": (  # OSError (EOVERFLOW) rather than ValueError
        TG_SECRET.encode(),
        b'{"update_id": 6, "message": {"message_id": 1, "date": 67768036191676800,'
        b' "chat": {"id": 4242, "type": "private"}}}',
        {200, 400},
    ),
}


async def test_telegram_requests_that_got_a_500(telegram, tg_server):
    """Every case is tried; the message lists each one that still fails."""
    failures = []
    async with httpx.AsyncClient(timeout=30) as client:
        for case, (secret, body, statuses) in TELEGRAM_CRASHERS.items():
            try:
                response = await client.post(
                    f"{tg_server.url}/telegram/webhook",
                    content=body,
                    headers={"X-Telegram-Bot-Api-Secret-Token": secret},
                )
                no_stack_trace(response)
                assert response.status_code in statuses, response.status_code
            except AssertionError as error:
                failures.append(f"{case}: {error}")
    assert not failures, "\n".join(failures)
    assert await count(tg_server.kigen.db, User) == 0


# -- 3. the LINE webhook ------------------------------------------------------------------------

LINE_SECRET = "line-channel-secret-for-tests"
LINE_USER = "U" + "a" * 32


@pytest.fixture(scope="module")
def fake_line():
    if not line_spec_available():
        pytest.skip("../shared/specs/line/ not found")
    with FakeLine() as server:
        yield server


@pytest.fixture
def line(fake_line):
    fake_line.reset()
    yield fake_line
    fake_line.assert_no_violations()


@pytest_asyncio.fixture
async def line_server(database_url, line):
    settings_ = Settings(
        _env_file=None,
        database_url=database_url,
        line_channel_secret=LINE_SECRET,
        line_channel_access_token=line.access_token,
        line_api_url=line.base_url,
        delivery_interval_seconds=3600,
    )
    app = KigenServer(settings_, port=0, clock=FixedClock(NOW))
    await app.start()
    yield app
    await app.stop()


async def test_line_bodies_without_a_valid_signature_are_refused(line, line_server):
    loop = asyncio.get_running_loop()
    url = f"{line_server.url}/line/webhook"
    sender = LineWebhookSender(url, LINE_SECRET, fake=line)
    forger = LineWebhookSender(url, LINE_SECRET + "-forged")
    events = st.one_of(
        TEXTS.map(lambda t: sender.text(LINE_USER, t)),
        CHOICES.map(lambda c: sender.postback(LINE_USER, c or "x")),
        st.just(LINE_USER).map(sender.follow),
        st.just(LINE_USER).map(sender.unfollow),
    )
    bodies = st.one_of(
        st.lists(events, max_size=3).map(sender.body),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=300),
    )
    # No header, an empty one, junk, or a well-formed signature of something else.
    signatures = st.one_of(
        st.none(),
        st.just(b""),
        HEADER_VALUES,
        st.binary(min_size=32, max_size=32).map(base64.b64encode),
    )

    @fuzz(50)
    @given(bodies, signatures, st.booleans(), HEADERS)
    def check(body, signature, forged, headers):
        headers = {**headers, "Content-Type": "application/json"}
        if forged:
            signature = forger.sign(body).encode()
        if signature is not None:
            headers["X-Line-Signature"] = signature
        before = on_loop(loop, dump_tables(line_server.kigen.db))
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        no_stack_trace(response)
        assert response.status_code == (401 if signature else 400), response.status_code
        assert on_loop(loop, dump_tables(line_server.kigen.db)) == before

    await asyncio.to_thread(check)
    assert await count(line_server.kigen.db, User) == 0
    assert line.calls("replyMessage") == [] and line.calls("pushMessage") == []


async def test_line_a_signed_body_nested_5000_deep_is_a_400(line, line_server):
    sender = LineWebhookSender(f"{line_server.url}/line/webhook", LINE_SECRET, fake=line)
    response = await sender.post([], body_override=b"[" * 5000)
    no_stack_trace(response)
    assert response.status_code == 400


# -- 4. the operator console --------------------------------------------------------------------

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
BROADCAST_FIELDS = [
    "title", "text_en", "text_ja", "text_vi", "text_xx", "fallback", "link", "source",
    "channel_line", "channel_telegram", "channel_console", "channel_jsonl", "channel_sms",
    "lang_en", "lang_ja", "lang_xx", "kind_residence_card", "kind_my_number_card", "kind_x",
    "expiry_within_days", "saved_after", "saved_before", "send_at", "csrf",
]  # fmt: skip
FORM_WORDS = [
    "english", "skip", "on", "1", "https://www.moj.go.jp/isa/", "http://evil.example",
    "javascript:alert(1)", "2027-03-15", "0001-01-01", "9999-12-31", "2027-03-15T09:00",
    "9999-12-31T23:59:59", "0001-01-01T00:00", "2027-13-45", "x" * 2001, "\x00",
    "<script>alert(1)</script>", "{{ 7*7 }}", "' OR 1=1 --",
]  # fmt: skip
FORM_VALUES = st.one_of(
    st.text(max_size=60),
    NUMBERISH,
    st.sampled_from(FORM_WORDS),
)


def form_fields(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    keys = st.sampled_from(names) | st.text(max_size=20)
    return st.dictionaries(keys, FORM_VALUES, max_size=10)


@pytest_asyncio.fixture
async def console(database_url):
    settings_ = Settings(
        _env_file=None,
        database_url=database_url,
        secret_key="k" * 40,
        broadcast_two_person=True,
        delivery_interval_seconds=3600,
    )
    server = KigenServer(settings_, port=0, clock=FixedClock(NOW))
    await server.start()
    for name, role in (("ed", "editor"), ("boss", "approver")):
        await operators.add(server.kigen.db, server.kigen.clock.now(), name, role, PASSWORD)
    yield server
    await server.stop()


def log_in(url: str, name: str) -> tuple[httpx.Client, str]:
    """A signed-in client of ``name`` and the CSRF token of its session."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    page = client.get("/admin/login")
    response = client.post(
        "/admin/login",
        data={"name": name, "password": PASSWORD, "csrf": CSRF.search(page.text).group(1)},
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin/"
    return client, CSRF.search(client.get("/admin/broadcasts/new").text).group(1)


def post_form(client: httpx.Client, path: str, fields: dict[str, str], encoding: str):
    """POST ``fields`` urlencoded, as multipart, or as a raw body of a random type."""
    if encoding == "multipart":
        files = {"upload": ("a.txt", b"\x00\xff", "application/octet-stream")}
        return client.post(path, data=fields, files=files)
    if encoding == "raw":
        body = "&".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8", "surrogatepass")
        return client.post(path, content=body, headers={"Content-Type": "multipart/form-data"})
    return client.post(path, data=fields)


CSRF_KINDS = st.sampled_from(["valid", "missing", "forged", "random"])
ENCODINGS = st.sampled_from(["urlencoded", "urlencoded", "multipart", "raw"])


def with_csrf(fields: dict[str, str], kind: str, token: str, junk: str) -> dict[str, str]:
    fields = {k: v for k, v in fields.items() if k != "csrf"}
    if kind == "valid":
        fields["csrf"] = token
    elif kind == "forged":
        fields["csrf"] = token[:-1] + ("0" if token[-1] != "0" else "1")
    elif kind == "random":
        fields["csrf"] = junk
    return fields


async def test_console_login_form_never_500_and_refuses_without_csrf(console):
    loop = asyncio.get_running_loop()

    @fuzz(40)
    @given(
        form_fields(["name", "password", "csrf", "next"]),
        st.sampled_from(["ed", "boss", "nobody", "", "ed\x00", "é" * 70]) | st.text(max_size=80),
        st.text(max_size=80).filter(lambda p: p != PASSWORD),
        CSRF_KINDS,
        st.text(max_size=70),
        ENCODINGS,
    )
    def check(fields, name, password, csrf_kind, junk, encoding):
        with httpx.Client(base_url=console.url, follow_redirects=False, timeout=30) as client:
            token = CSRF.search(client.get("/admin/login").text).group(1)
            fields = with_csrf(
                {**fields, "name": name, "password": password}, csrf_kind, token, junk
            )
            audit_before = on_loop(loop, count(console.kigen.db, AuditEntry))
            response = post_form(client, "/admin/login", fields, encoding)
            no_stack_trace(response)
            if csrf_kind != "valid" or encoding == "raw":
                assert response.status_code in (400, 403), response.status_code
                assert on_loop(loop, count(console.kigen.db, AuditEntry)) == audit_before
            else:
                assert response.status_code == 303
                assert response.headers["location"] == "/admin/login?failed=1"
                assert "kigen_session" not in response.cookies

    await asyncio.to_thread(check)


async def test_console_broadcast_forms_never_500_and_refuse_without_csrf(console):
    loop = asyncio.get_running_loop()
    db = console.kigen.db
    # Any action but what would leave the route: a "/" or a "." / ".." segment.
    actions = st.sampled_from(
        ["approve", "send", "cancel", "test", "progress", "delete"]
    ) | st.text(min_size=1, max_size=20).filter(lambda a: "/" not in a and a.strip(".") != "")
    ids = st.integers(min_value=1, max_value=4) | st.integers(min_value=-(2**70), max_value=2**70)
    targets = st.one_of(
        st.just("/admin/broadcasts"),
        st.just("/admin/broadcasts/count"),
        st.builds(lambda i, a: f"/admin/broadcasts/{i}/{quote(a, safe='')}", ids, actions),
    )

    def scenario():
        editor, editor_csrf = log_in(console.url, "ed")
        boss, boss_csrf = log_in(console.url, "boss")
        sessions = {"ed": (editor, editor_csrf), "boss": (boss, boss_csrf)}

        @fuzz(60)
        @given(
            targets,
            form_fields(BROADCAST_FIELDS),
            st.sampled_from(["ed", "boss"]),
            CSRF_KINDS,
            st.text(max_size=70),
            ENCODINGS,
        )
        def check(path, fields, who, csrf_kind, junk, encoding):
            client, token = sessions[who]
            fields = with_csrf(fields, csrf_kind, token, junk)
            before = on_loop(loop, dump_tables(db))
            response = post_form(client, path, fields, encoding)
            no_stack_trace(response)
            if csrf_kind != "valid" or encoding == "raw":
                assert response.status_code in (400, 403), response.status_code
                assert on_loop(loop, dump_tables(db)) == before, f"{path} wrote without a token"
            if response.status_code == 303:
                followed = client.get(response.headers["location"])
                no_stack_trace(followed)

        try:
            check()
        finally:
            editor.close()
            boss.close()

    await asyncio.to_thread(scenario)
    async with db.session() as session:
        for item in (await session.execute(select(Broadcast))).scalars():
            assert item.title.strip() and item.texts


async def test_console_pages_survive_random_session_cookies(console):
    """A tampered ``kigen_session`` cookie is a logged-out visitor, not a crash."""

    @fuzz(30)
    @given(
        st.one_of(
            HEADER_VALUES,
            st.builds(
                lambda a, b, c: b".".join((a, b, c)),
                st.sampled_from([b"o1v0", b"o1v1", b"e1", b""]),
                st.sampled_from([b"9999999999", b"\xc2\xb2", b"1", b""]),
                HEADER_VALUES,
            ),
        ).map(lambda v: header_value(v.replace(b";", b"").replace(b",", b""))),
        st.sampled_from(["/admin/", "/admin/broadcasts", "/admin/broadcasts/1/progress"]),
    )
    def check(cookie, path):
        headers = {"Cookie": b"kigen_session=" + cookie}
        response = httpx.get(console.url + path, headers=headers, timeout=30)
        no_stack_trace(response)
        assert response.status_code in (303, 403), response.status_code
        response = httpx.post(
            console.url + "/admin/broadcasts", data={"title": "x"}, headers=headers, timeout=30
        )
        no_stack_trace(response)
        assert response.status_code == 403

    await asyncio.to_thread(check)


#: Console requests that got a 500, signed in as "ed" with a valid CSRF token unless the
#: case says otherwise: (method, path, form fields, the statuses that are right).
CONSOLE_CRASHERS: dict[str, tuple[str, str, dict[str, str], set[int]]] = {
    "non-ASCII CSRF token on a form": ("POST", "/admin/broadcasts", {"csrf": "\x80"}, {403}),
    "audience within 99999999 days": (
        "POST", "/admin/broadcasts/count", {"expiry_within_days": "99999999"}, {200, 400},
    ),
    "audience within ² days": (
        "POST", "/admin/broadcasts/count", {"expiry_within_days": "²"}, {200, 400},
    ),
    "audience within 5000 digits of days": (
        "POST", "/admin/broadcasts/count", {"expiry_within_days": "9" * 5000}, {200, 400},
    ),
    "audience saved after 0001-01-01": (
        "POST", "/admin/broadcasts/count", {"saved_after": "0001-01-01"}, {200, 400},
    ),
    "send at 0001-01-01T00:00": (
        "POST", "/admin/broadcasts", {"send_at": "0001-01-01T00:00"}, {200, 303, 400},
    ),
    "draft within 99999999 days": (  # saved, then its page is a 500 for ever
        "POST", "/admin/broadcasts", {"expiry_within_days": "99999999"}, {200, 303, 400},
    ),
    "NUL in the title": ("POST", "/admin/broadcasts", {"title": "a\x00b"}, {200, 303, 400}),
    "NUL in the source": ("POST", "/admin/broadcasts", {"source": "a\x00b"}, {200, 303, 400}),
    "NUL in the link": ("POST", "/admin/broadcasts", {"link": "https://a\x00b"}, {200, 303, 400}),
    "approve broadcast 10**20": ("POST", f"/admin/broadcasts/{HUGE}/approve", {}, {303, 404}),
    "cancel broadcast 2**31": ("POST", "/admin/broadcasts/2147483648/cancel", {}, {303, 404}),
    "page of broadcast 10**20": ("GET", f"/admin/broadcasts/{HUGE}", {}, {404}),
    "page of broadcast 2**31": ("GET", "/admin/broadcasts/2147483648", {}, {404}),
    "progress of broadcast 10**20": ("GET", f"/admin/broadcasts/{HUGE}/progress", {}, {404}),
}  # fmt: skip
DRAFT = {"title": "Fees", "text_en": "Fees change."}


async def console_case(console, client: httpx.AsyncClient, token: str, case: str) -> None:
    method, path, fields, statuses = CONSOLE_CRASHERS[case]
    drafts = await count(console.kigen.db, Broadcast)
    if method == "GET":
        response = await client.get(path)
    else:
        response = await client.post(path, data={**DRAFT, "csrf": token, **fields})
    no_stack_trace(response)
    assert response.status_code in statuses, response.status_code
    if response.status_code == 303:
        no_stack_trace(await client.get(response.headers["location"]))
    if statuses == {403}:
        assert await count(console.kigen.db, Broadcast) == drafts


async def test_console_requests_that_got_a_500(console):
    """Every case is tried; the message lists each one that still fails."""
    failures = []
    client, token = await asyncio.to_thread(log_in, console.url, "ed")
    cookies = dict(client.cookies)
    client.close()
    async with httpx.AsyncClient(
        base_url=console.url, cookies=cookies, follow_redirects=False, timeout=30
    ) as signed_in:
        for case in CONSOLE_CRASHERS:
            try:
                await console_case(console, signed_in, token, case)
            except AssertionError as error:
                failures.append(f"{case}: {error}")
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as visitor:
        login_csrf = CSRF.search((await visitor.get("/admin/login")).text).group(1)
        for case, data, location in (
            ("non-ASCII CSRF token at login", {"name": "ed", "csrf": "\x80"}, None),
            ("NUL in the login name", {"name": "ed\x00", "csrf": login_csrf}, "failed=1"),
        ):
            try:
                response = await visitor.post("/admin/login", data={"password": "x", **data})
                no_stack_trace(response)
                if location is None:
                    assert response.status_code == 403, response.status_code
                else:
                    assert response.headers.get("location", "").endswith(location), response
            except AssertionError as error:
                failures.append(f"{case}: {error}")
        try:
            response = await visitor.get(
                "/admin/", headers={"Cookie": b"kigen_session=o1v0.9999999999.\x80"}
            )
            no_stack_trace(response)
            assert response.status_code == 303, response.status_code
        except AssertionError as error:
            failures.append(f"non-ASCII session cookie: {error}")
    assert not failures, "\n".join(failures)


# -- 5. the command line ------------------------------------------------------------------------

#: Commands that block on stdin, serve forever, or follow a broadcast until it is done.
BLOCKING = {"chat", "serve", "ask", "--follow"}
COMMAND_PATHS = [
    [], ["db"], ["db", "upgrade"], ["faq"], ["faq", "check"], ["telegram"],
    ["telegram", "set-webhook"], ["line"], ["line", "setup-richmenu"], ["operator"],
    ["operator", "add"], ["operator", "set-chat"], ["broadcast"], ["broadcast", "create"],
    ["broadcast", "preview"], ["broadcast", "approve"], ["broadcast", "send"],
    ["broadcast", "cancel"], ["broadcast", "status"],
]  # fmt: skip
CLI_WORDS = [
    "--help", "-h", "--lang", "--role", "--password", "--as", "--title", "--text",
    "--fallback", "--link", "--source", "--channel", "--language", "--document",
    "--expiry-within-days", "--now", "--jsonl", "--", "-", "en", "ja", "xx", "editor",
    "approver", "admin", "english", "skip", "telegram", "line", "console", "jsonl",
    "ed", "boss", "en=Fees change.", "ja=手数料", "=x", "en=", "xx=hi",
    "residence_card", "https://www.moj.go.jp/", "http://x", "upgrade", "check",
    "create", "preview", "approve", "send", "cancel", "status", "add", "set-chat",
]  # fmt: skip
CLI_TOKENS = st.one_of(
    st.sampled_from(CLI_WORDS),
    NUMBERISH.filter(lambda s: len(s) < 100),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=20),
).filter(lambda token: token not in BLOCKING and "\x00" not in token)


def _flat(pairs) -> list[str]:
    return [item for pair in pairs for item in pair]


def cli_arguments() -> st.SearchStrategy[list[str]]:
    """Argument lists: well-formed commands with hostile values, command paths followed by
    random tokens, and random tokens alone."""
    ids = st.one_of(
        st.integers(min_value=1, max_value=3).map(str),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        NUMBERISH.filter(lambda s: len(s) < 100),
    )
    names = st.sampled_from(["ed", "boss", "nobody", "", "ed.2"]) | st.text(max_size=20)
    free = st.sampled_from(CLI_WORDS) | st.text(max_size=30)
    options = st.lists(
        st.one_of(
            st.tuples(st.just("--expiry-within-days"), ids),
            st.tuples(
                st.sampled_from(
                    ["--channel", "--language", "--document", "--link", "--source", "--fallback"]
                ),
                free,
            ),
        ),
        max_size=3,
    ).map(_flat)
    create = st.builds(
        lambda name, title, texts, extra: [
            *("broadcast", "create", "--as", name, "--title", title),
            *_flat(("--text", text) for text in texts),
            *extra,
        ],
        names,
        free,
        st.lists(
            st.sampled_from(["en=Fees change.", "ja=手数料", "xx=hi", "=x"]) | free, max_size=3
        ),
        options,
    )
    act = st.builds(
        lambda command, broadcast_id, name: ["broadcast", command, broadcast_id, "--as", name],
        st.sampled_from(["approve", "send", "cancel"]),
        ids,
        names,
    )
    show = st.builds(
        lambda command, broadcast_id: ["broadcast", command, broadcast_id],
        st.sampled_from(["preview", "status"]),
        ids,
    )
    operator = st.one_of(
        st.builds(
            lambda name, role, password: [
                *("operator", "add", name, "--role", role, "--password", password)
            ],
            names,
            st.sampled_from(["editor", "approver", "admin", "root"]),
            st.sampled_from([PASSWORD, "short"]) | st.text(max_size=20),
        ),
        st.builds(
            lambda name, channel, user: ["operator", "set-chat", name, channel, user],
            names,
            st.sampled_from(["telegram", "line", "console", "jsonl", "sms"]),
            free,
        ),
    )
    structured = st.builds(
        lambda path, rest: [*path, *rest],
        st.sampled_from(COMMAND_PATHS),
        st.lists(CLI_TOKENS, max_size=8),
    )
    loose = st.lists(CLI_TOKENS, max_size=6)
    return st.one_of(create, act, show, operator, structured, loose).filter(
        lambda args: not (set(args) & BLOCKING) and all("\x00" not in a for a in args)
    )


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``invoke(args)``: the ``kigen`` command on a SQLite file of its own, with two
    operators and a draft, and nothing of the developer's environment."""
    import sqlite3

    from bot.cli import main

    for name in list(os.environ):
        if name.startswith("KIGEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = tmp_path / "cli.db"
    monkeypatch.setenv("KIGEN_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    runner = CliRunner()

    def broadcasts() -> int:
        with sqlite3.connect(path) as connection:
            return connection.execute("SELECT count(*) FROM broadcasts").fetchone()[0]

    def invoke(args: list[str]):
        """Run ``kigen *args``; fail on a crash, or on a refused ``broadcast create`` that
        kept its draft anyway."""
        before = broadcasts() if path.exists() else 0
        result = runner.invoke(main, args, input="", catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            trace = "".join(traceback.format_exception(*result.exc_info))
            raise AssertionError(f"kigen {args!r} crashed (exit {result.exit_code}):\n{trace}")
        assert "Traceback" not in result.output
        if args[:2] == ["broadcast", "create"] and result.exit_code != 0:
            assert broadcasts() == before, f"kigen {args!r} failed but saved a draft"
        return result

    for args in (
        ["operator", "add", "ed", "--role", "editor", "--password", PASSWORD],
        ["operator", "add", "boss", "--role", "approver", "--password", PASSWORD],
        ["broadcast", "create", "--as", "ed", "--title", "Fees", "--text", "en=Fees change."],
    ):
        assert invoke(args).exit_code == 0, args
    return invoke


def test_the_cli_never_crashes_on_random_arguments(cli):
    @fuzz(50)
    @given(cli_arguments())
    def check(args):
        cli(args)

    check()


CLI_CRASHERS = [
    ["operator", "set-chat", "nobody", "telegram", "1"],
    ["broadcast", "create", "--as", "ed", "--title", "t", "--text", "en=hi",
     "--expiry-within-days", "99999999"],
    ["broadcast", "create", "--as", "ed", "--title", "t", "--text", "en=hi",
     "--expiry-within-days", HUGE],
    ["broadcast", "preview", HUGE],
    ["broadcast", "approve", HUGE, "--as", "boss"],
    ["broadcast", "send", HUGE, "--as", "ed"],
    ["broadcast", "cancel", HUGE, "--as", "ed"],
    ["broadcast", "status", HUGE],
]  # fmt: skip


@pytest.mark.parametrize("args", CLI_CRASHERS, ids=" ".join)
def test_the_cli_on_arguments_that_crashed_it(cli, args):
    cli(args)
