"""LINE end to end: the real line-bot-sdk over real HTTP to the fake Messaging API, and
signed webhook bodies posted to Kigen's server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
)
from sqlalchemy import func, select

from bot.line import LineSender, Renderer, retry_key
from bot.line_richmenu import setup_rich_menus
from bot.serve import KigenServer
from core import metrics
from core.clock import FixedClock
from core.config import Settings
from core.messages import Event, Incoming, Reply
from core.outbox import Delivery
from core.store import users
from core.store.models import OutboxMessage, User
from tests.conftest import JST
from tests.fakes.line import FakeLine, LineWebhookSender, new_webhook_event_id, spec_available
from tests.helpers import due_reminders, reply_rows

pytestmark = pytest.mark.skipif(not spec_available(), reason="../shared/specs/line/ not found")

SECRET = "line-channel-secret-for-tests"
USER = "U" + "a" * 32


@pytest.fixture(scope="module")
def fake_line():
    with FakeLine() as server:
        yield server


@pytest.fixture
def line(fake_line):
    fake_line.reset()
    yield fake_line
    fake_line.assert_no_violations()


@pytest.fixture
def line_settings(database_url, line) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        line_channel_secret=SECRET,
        line_channel_access_token=line.access_token,
        line_api_url=line.base_url,
        delivery_interval_seconds=3600,
    )


@pytest_asyncio.fixture
async def server(line_settings):
    app = KigenServer(
        line_settings, port=0, clock=FixedClock(datetime(2026, 11, 25, 10, tzinfo=JST))
    )
    await app.start()
    yield app
    await app.stop()


@pytest.fixture
def webhook(line, server) -> LineWebhookSender:
    return LineWebhookSender(f"{server.url}/line/webhook", SECRET, fake=line)


def last_messages(line: FakeLine, user: str = USER) -> list[dict]:
    request = [r for r in line.calls() if r.accepted and r.recipients and user in r.recipients][-1]
    return request.messages


def quick_actions(message: dict) -> list[dict]:
    return [item["action"] for item in (message.get("quickReply") or {}).get("items", [])]


def postbacks(message: dict) -> list[str]:
    if message["type"] == "flex":
        footer = message["contents"]["footer"]["contents"]
        return [button["action"]["data"] for button in footer]
    return [a["data"] for a in quick_actions(message) if a["type"] == "postback"]


async def test_a_whole_journey(line, server, webhook):
    line.add_profile(USER, language="en")
    assert (await webhook.post(webhook.follow(USER))).status_code == 200
    (greeting,) = last_messages(line)
    assert "lang:en" in postbacks(greeting)
    await webhook.post(webhook.postback(USER, "lang:en"))
    assert last_messages(line)[0]["text"] == "I will write to you in English."

    await webhook.post(webhook.text(USER, "How long is the special period after my visa expires?"))
    (answer,) = last_messages(line)
    assert "2 months" in answer["text"] and "Source: https://" in answer["text"]

    await webhook.post(webhook.postback(USER, "menu:add"))
    await webhook.post(webhook.postback(USER, "kind:residence_card"))
    await webhook.post(webhook.postback(USER, "consent:yes"))
    (ask,) = last_messages(line)
    (picker,) = [a for a in quick_actions(ask) if a["type"] == "datetimepicker"]
    assert (picker["mode"], picker["min"], picker["max"]) == ("date", "2026-11-25", "2036-11-25")
    await webhook.post(webhook.postback(USER, "date:picked", params={"date": "2027-03-15"}))
    assert "March 15, 2027" in last_messages(line)[0]["text"]
    await webhook.post(webhook.postback(USER, "confirm:yes"))
    assert last_messages(line)[0]["text"].startswith("Saved:")

    await webhook.post(webhook.text(USER, "/list"))
    (listing,) = last_messages(line)
    assert listing["type"] == "flex" and "March 15, 2027" in listing["altText"]
    renew = next(data for data in postbacks(listing) if data.startswith("renew:"))
    await webhook.post(webhook.postback(USER, renew))
    await webhook.post(webhook.postback(USER, "date:picked", params={"date": "2028-03-15"}))
    assert "March 15, 2028" in last_messages(line)[0]["text"]

    assert (await webhook.post(webhook.unfollow(USER))).status_code == 200
    async with server.kigen.db.session() as session:
        user = await users.get_user(session, "line", USER)
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )
    assert user.active is False and pending == 0
    assert {r.endpoint for r in line.calls() if r.accepted} == {
        "replyMessage",
        "getProfile",
        "getRichMenuList",
    }


async def test_forged_missing_and_malformed_bodies_change_nothing(line, server, webhook):
    event = webhook.text(USER, "hello")
    assert (await webhook.post([event], signature="forged" + "A" * 38)).status_code == 401
    assert (await webhook.post([event], signature="")).status_code == 400
    body = b"{not json"
    assert (await webhook.post([], body_override=body)).status_code == 400
    not_a_webhook = json.dumps({"hello": "world"}).encode()
    assert (await webhook.post([], body_override=not_a_webhook)).status_code == 400
    huge = b'{"destination": "x", "events": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert (await webhook.post([], body_override=huge)).status_code == 413
    async with server.kigen.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
    assert line.calls("replyMessage") == []


async def test_verify_call_and_unknown_events_are_accepted(line, webhook):
    assert (await webhook.post([])).status_code == 200
    unknown = {**webhook.text(USER, "x"), "type": "somethingNew"}
    assert (await webhook.post([unknown])).status_code == 200
    assert line.calls("replyMessage") == []


async def test_a_redelivered_event_is_processed_once(line, webhook):
    event = webhook.text(USER, "Do I need to carry my residence card?")
    await webhook.post([event])
    await webhook.redeliver(event)
    assert len(line.delivered_to(USER)) == 1


async def test_a_sticker_gets_a_polite_answer(line, webhook):
    await webhook.post(webhook.sticker(USER))
    assert "only read text" in line.delivered_to(USER)[0]


async def test_an_expired_reply_token_falls_back_to_push(line, webhook):
    event = webhook.text(USER, "Do I need to carry my residence card?")
    event["timestamp"] -= 120_000
    await webhook.post([event])
    (push,) = line.pushes()
    assert push.accepted and push.retry_key


async def test_choosing_a_language_links_the_rich_menu_of_that_language(line, line_settings):
    async with AsyncApiClient(
        Configuration(host=line.base_url, access_token=line.access_token)
    ) as client:
        from core.i18n import SUPPORTED, Catalogs

        catalogs = Catalogs(line_settings.locales_dir, SUPPORTED)
        created = await setup_rich_menus(
            AsyncMessagingApi(client), AsyncMessagingApiBlob(client), catalogs
        )
    assert set(created) == set(SUPPORTED)
    assert all(menu_id in line.rich_menu_images for menu_id in created.values())
    assert line.default_rich_menu == created["en"]
    app = KigenServer(line_settings, port=0)
    await app.start()
    try:
        sender = LineWebhookSender(f"{app.url}/line/webhook", SECRET, fake=line)
        await sender.post(sender.postback(USER, "lang:en"))
        assert line.user_rich_menus[USER] == created["en"]
    finally:
        await app.stop()


@asynccontextmanager
async def line_sender(
    line: FakeLine, kigen, clock, settings: Settings | None = None
) -> AsyncIterator[LineSender]:
    """Kigen's LINE sender, talking to the fake through the real SDK."""
    async with AsyncApiClient(
        Configuration(host=line.base_url, access_token=line.access_token)
    ) as client:
        renderer = Renderer(kigen.catalogs, clock)
        yield LineSender(AsyncMessagingApi(client), renderer, settings or kigen.settings)


async def test_an_answer_line_does_not_take_is_pushed_once_it_is_back(line, server, webhook):
    line.add_profile(USER, language="en")
    line.fail_next("reply", 500)
    line.fail_next("push", 503)
    deferred = metrics.REPLIES_DEFERRED.labels("line")
    before = deferred._value.get()
    assert (await webhook.post(webhook.follow(USER))).status_code == 200
    assert line.delivered_to(USER) == []
    assert deferred._value.get() == before + 1
    (row,) = await reply_rows(server.kigen.db)
    assert row.status == "pending" and row.body[0]["intent"] == "onboarding:language"

    line.fail_next("push", 500)  # still down at the first try
    await server.delivery.run_once()
    assert line.delivered_to(USER) == []
    await server.delivery.run_once()  # the retry waits for its backoff
    assert line.delivered_to(USER) == []

    server.clock.move_to(server.clock.now() + timedelta(seconds=6))
    await server.delivery.run_once()
    (greeting,) = line.delivered_to(USER)
    assert greeting == row.body[0]["text"]
    (pushed,) = [r for r in line.pushes() if r.accepted]
    assert "lang:en" in postbacks(pushed.json["messages"][0])
    assert pushed.retry_key == retry_key(f"outbox:{row.id}")
    (row,) = await reply_rows(server.kigen.db)
    assert (row.status, row.attempts, row.body) == ("sent", 2, None)


async def test_an_answer_line_refuses_for_good_is_not_queued(line, server, webhook):
    line.add_profile(USER, language="en")
    line.fail_next("reply", 400)
    line.fail_next("push", 400)
    assert (await webhook.post(webhook.follow(USER))).status_code == 200
    assert line.delivered_to(USER) == [] and await reply_rows(server.kigen.db) == []


async def test_a_queued_answer_of_seven_messages_arrives_once_each(line, kigen, clock):
    await kigen.conversation.handle(Incoming("line", USER, event=Event.FOLLOW))
    replies = [Reply(text=f"part {n}", intent="test", language="en") for n in range(7)]
    await kigen.conversation.deliver_later("line", USER, replies)
    # Down at the first try; at the second, LINE takes the first five messages but answers
    # 500; at the third it answers 409 for them (already taken) and the last two follow.
    line.fail_next("push", 500)
    line.fail_next("push", 500, after_delivery=True)
    async with line_sender(line, kigen, clock) as sender:
        delivery = Delivery(kigen.db, {"line": sender}, kigen.notices, clock)
        for _ in range(4):
            await delivery.run_once()
            clock.move_to(clock.now() + timedelta(minutes=1))
    assert line.delivered_to(USER) == [f"part {n}" for n in range(7)]
    assert [r.status for r in line.pushes()] == [500, 500, 409, 200]
    (row,) = await reply_rows(kigen.db)
    assert row.status == "sent"


async def test_reminders_are_pushed_once_with_a_retry_key(line, kigen, clock):
    await due_reminders(kigen, "line", range(3), date(2027, 3, 15))
    line.fail_next("push", 429, message="You have reached your monthly limit.")
    line.fail_next("push", 500, after_delivery=True)
    async with line_sender(line, kigen, clock) as sender:
        delivery = Delivery(kigen.db, {"line": sender}, kigen.notices, clock)
        clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
        for _ in range(6):
            await delivery.run_once()
            clock.move_to(clock.now() + timedelta(minutes=5))
    for number in range(3):
        assert len(line.delivered_to(str(number))) == 1
    statuses = [r.status for r in line.pushes()]
    assert statuses.count(429) == 1 and statuses.count(409) == 1 and statuses.count(500) == 1
    async with kigen.db.session() as session:
        rows = (
            (await session.execute(select(OutboxMessage).where(OutboxMessage.step == "window")))
            .scalars()
            .all()
        )
    assert {row.status for row in rows} == {"sent"}
    expected_keys = {retry_key(f"outbox:{row.id}") for row in rows}
    assert {r.retry_key for r in line.pushes()} == expected_keys


async def test_a_refused_push_is_a_permanent_failure_with_the_reason(line, kigen, clock):
    await due_reminders(kigen, "line", range(1), date(2027, 3, 15))
    line.fail_next("push", 400, message="The property, 'to', in the request body is invalid")
    async with line_sender(line, kigen, clock) as sender:
        clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
        await Delivery(kigen.db, {"line": sender}, kigen.notices, clock).run_once()
    async with kigen.db.session() as session:
        row = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.step == "window"))
        ).scalar_one()
    assert row.status == "failed" and row.last_error.startswith("400 The property")


async def test_the_webhook_never_answers_500_on_random_valid_signed_bodies(line, webhook):
    """Random texts, postback data, picked dates, stickers and follows, validly signed:
    the endpoint always answers 200."""
    texts = st.text(max_size=300)
    events = st.one_of(
        texts.map(lambda t: webhook.text(USER, t)),
        texts.map(lambda t: webhook.postback(USER, t[:300] or "x")),
        st.dates().map(
            lambda d: webhook.postback(USER, "date:picked", params={"date": d.isoformat()})
        ),
        st.builds(webhook.sticker, st.just(USER)),
        st.builds(webhook.follow, st.just(USER)),
    )

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(events, max_size=3))
    def check(batch):
        for event in batch:
            event["webhookEventId"] = new_webhook_event_id()
        body = webhook.body(batch)
        response = httpx.post(
            webhook.url,
            content=body,
            timeout=30,
            headers={"X-Line-Signature": webhook.sign(body), "Content-Type": "application/json"},
        )
        assert response.status_code == 200

    await asyncio.to_thread(check)


async def test_a_10000_resident_broadcast_goes_out_in_20_multicasts_once_each(line, kigen, clock):
    """An injected 429, and a worker that dies after LINE accepted a multicast: every
    resident is reached exactly once."""
    from core import broadcast
    from core.store import outbox
    from tests.test_broadcast import residents

    await residents(kigen, [(f"U{n:032x}", "line", "en", True, None) for n in range(10_000)])
    broadcast_id = await broadcast.create(
        kigen.db, clock.now(), "ed", title="Fees", texts={"en": "Fees change."}
    )
    await broadcast.approve(kigen.db, clock.now(), broadcast_id, "boss", "admin", two_person=True)
    await broadcast.start(kigen.db, clock.now(), broadcast_id, "boss")
    await broadcast.materialise(kigen.db, clock.now())
    async with line_sender(line, kigen, clock) as sender:
        # A worker sends the first batch, LINE accepts it, and the worker dies before recording it.
        async with kigen.db.session() as session:
            (first,) = await outbox.claim_due(
                session,
                now=clock.now(),
                worker="dead",
                limit=1,
                lease=timedelta(minutes=2),
                channels=["line"],
            )
            await outbox.mark_sending(
                session, [first], "dead", lease_until=clock.now() + timedelta(minutes=2)
            )
        async with kigen.db.session() as session:
            (row,) = await outbox.get_rows(session, [first])
            rendered = await kigen.notices.render(session, row, clock.now())
        await sender.send(rendered.recipients, rendered.replies, key=f"outbox:{first}")
        line.fail_next("multicast", 429)
        delivery = Delivery(kigen.db, {"line": sender}, kigen.notices, clock, batch_size=50)
        for _ in range(10):
            await delivery.run_once()
            await broadcast.materialise(kigen.db, clock.now())
            clock.move_to(clock.now() + timedelta(minutes=3))
    accepted = [r for r in line.multicasts() if r.accepted]
    assert len(accepted) == 20
    assert all(len(r.recipients) <= 500 for r in line.multicasts())
    reached = [user for r in accepted for user in r.recipients]
    assert len(reached) == len(set(reached)) == 10_000
    statuses = [r.status for r in line.multicasts()]
    assert statuses.count(429) == 1 and statuses.count(409) == 1
    async with kigen.db.session() as session:
        from core.store.broadcasts import progress
        from core.store.models import Broadcast

        assert (await progress(session, broadcast_id))["sent"] == 10_000
        assert (await session.get(Broadcast, broadcast_id)).status == "done"


async def test_multicasts_are_paced_below_the_configured_rate(line, kigen, clock):
    """Six multicasts at 2 per second: never more than one interval's worth in a second
    (unpaced, all six would leave at once)."""
    from core import broadcast
    from tests.test_broadcast import residents

    await residents(kigen, [(f"U{n:032x}", "line", "en", True, None) for n in range(3_000)])
    broadcast_id = await broadcast.create(
        kigen.db, clock.now(), "ed", title="Fees", texts={"en": "Fees change."}
    )
    await broadcast.approve(kigen.db, clock.now(), broadcast_id, "boss", "admin", two_person=False)
    await broadcast.start(kigen.db, clock.now(), broadcast_id, "boss")
    await broadcast.materialise(kigen.db, clock.now())
    paced = kigen.settings.model_copy(update={"line_multicast_rate": 2.0})
    async with line_sender(line, kigen, clock, paced) as sender:
        await Delivery(kigen.db, {"line": sender}, kigen.notices, clock).run_once()
    assert len([r for r in line.multicasts() if r.accepted]) == 6
    assert line.max_rate_observed("multicast") <= 3


async def test_a_running_server_writes_question_counts_every_few_seconds(line, line_settings):
    from sqlalchemy import func

    from core.store.models import QuestionStat

    settings = line_settings.model_copy(update={"delivery_interval_seconds": 0.2})
    app = KigenServer(settings, port=0)
    await app.start()
    try:
        webhook = LineWebhookSender(f"{app.url}/line/webhook", SECRET, fake=line)
        await webhook.post(webhook.text(USER, "When can I renew my residence card?"))
        counted = None
        for _ in range(100):  # written by the scheduler, not at shutdown
            async with app.kigen.db.session() as session:
                counted = await session.scalar(select(func.sum(QuestionStat.count)))
            if counted:
                break
            await asyncio.sleep(0.1)
        assert counted == 1
    finally:
        await app.stop()
