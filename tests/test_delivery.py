"""The outbox delivery job: claim, send, record; retries, blocked users, stale rows,
interrupted sends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.messages import Reply
from core.outbox import Delivery, Outcome, SendResult, backoff, default_worker_id
from core.store import outbox
from core.store.models import OutboxMessage, User
from tests.conftest import JST
from tests.helpers import Chat, reply_rows


class RecordingSender:
    """A Sender that records what it is given and answers what the test scripts."""

    channel = "test"
    max_recipients = 1

    def __init__(self, *, idempotent: bool = False, in_flight: int = 1) -> None:
        self.idempotent = idempotent
        self.in_flight = in_flight
        self.sent: list[tuple[str, str, list[Reply]]] = []
        self.script: list[SendResult] = []

    async def send(
        self, recipients: Sequence[str], replies: Sequence[Reply], *, key: str
    ) -> SendResult:
        result = self.script.pop(0) if self.script else SendResult(Outcome.SENT)
        if result.outcome == Outcome.SENT:
            self.sent += [(recipient, key, list(replies)) for recipient in recipients]
        return result


async def save_date(kigen, user: str = "u1", typed: str = "2027-03-15") -> Chat:
    chat = Chat(kigen.conversation, user=user)
    await chat.say("/remind")
    await chat.press("kind:residence_card")
    await chat.press("consent:yes")
    await chat.say(typed)
    await chat.press("confirm:yes")
    return chat


async def rows(kigen) -> list[OutboxMessage]:
    async with kigen.db.session() as session:
        result = await session.execute(select(OutboxMessage).order_by(OutboxMessage.due_at))
        return list(result.scalars())


def delivery(kigen, sender, worker: str = "w1") -> Delivery:
    return Delivery(kigen.db, {"test": sender}, kigen.notices, kigen.clock, worker_id=worker)


async def test_nothing_is_sent_before_it_is_due(kigen):
    await save_date(kigen)
    sender = RecordingSender()
    assert await delivery(kigen, sender).run_once() == 0
    assert sender.sent == []


async def test_a_due_reminder_is_sent_once_in_the_residents_language(kigen, clock):
    await save_date(kigen)
    sender = RecordingSender()
    job = delivery(kigen, sender)
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    assert await job.run_once() == 1
    assert await job.run_once() == 0
    ((recipient, key, replies),) = sender.sent
    assert recipient == "u1"
    assert replies[0].intent == "reminder:window"
    assert "March 15, 2027" in replies[0].text
    assert "Specified Residence Card" in replies[0].text
    ids = [choice.id.split(":")[0] for choice in replies[0].choices]
    assert ids[:4] == ["applied", "renew", "snooze", "stop"]
    (window, *_rest) = await rows(kigen)
    assert (window.status, window.attempts) == ("sent", 1)
    assert key == f"outbox:{window.id}"


async def test_a_window_reminder_missed_while_down_is_skipped_not_sent_late(kigen, clock):
    await save_date(kigen)
    sender = RecordingSender()
    clock.move_to(datetime(2027, 2, 16, 9, 0, tzinfo=JST))  # after the 1-month reminder's day
    await delivery(kigen, sender).run_once()
    assert [r[2][0].intent for r in sender.sent] == ["reminder:month"]
    statuses = {row.step: (row.status, row.last_error) for row in await rows(kigen)}
    assert statuses["window"] == ("dropped", "stale")
    assert statuses["month"][0] == "sent"


async def test_retry_after_is_honoured_then_sent(kigen, clock):
    await save_date(kigen)
    sender = RecordingSender()
    sender.script = [SendResult(Outcome.RETRY, retry_after=30, error="429")]
    job = delivery(kigen, sender)
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    await job.run_once()
    window = (await rows(kigen))[0]
    assert (window.status, window.last_error) == ("pending", "429")
    clock.move_to(datetime(2026, 12, 15, 9, 0, 20, tzinfo=JST))
    assert await job.run_once() == 0
    clock.move_to(datetime(2026, 12, 15, 9, 0, 31, tzinfo=JST))
    assert await job.run_once() == 1
    assert len(sender.sent) == 1


async def test_a_two_hour_outage_loses_no_reminder(kigen, clock):
    await save_date(kigen)
    sender = RecordingSender()
    job = delivery(kigen, sender)
    start = datetime(2026, 12, 15, 9, 0, tzinfo=JST)
    clock.move_to(start)
    while clock.now() < start + timedelta(hours=2):
        sender.script = [SendResult(Outcome.RETRY, error="503")]
        await job.run_once()
        clock.move_to(clock.now() + timedelta(minutes=1))
    window = (await rows(kigen))[0]
    assert (window.status, window.last_error, window.attempts) == ("pending", "503", 11)
    sender.script = []  # the platform is back
    clock.move_to(clock.now() + timedelta(hours=1))
    await job.run_once()
    assert [r[2][0].intent for r in sender.sent] == ["reminder:window"]


async def test_a_queued_answer_is_sent_as_given_then_forgotten(kigen, clock):
    chat = Chat(kigen.conversation, user="u1")
    await chat.say("/start")
    (given,) = await chat.say("/mydata")
    assert given.document is not None
    await kigen.conversation.deliver_later("test", "u1", [given])
    sender = RecordingSender()
    await delivery(kigen, sender).run_once()
    ((recipient, _key, replies),) = sender.sent
    assert (recipient, replies) == ("u1", [given])
    (row,) = await reply_rows(kigen.db)
    assert row.status == "sent"
    assert await reply_bodies_left(kigen) == 0


async def reply_bodies_left(kigen) -> int:
    """Reply rows whose body is still stored (SQL NULL, not JSON null, once emptied)."""
    async with kigen.db.session() as session:
        query = select(func.count()).where(
            OutboxMessage.kind == "reply", OutboxMessage.body.is_not(None)
        )
        return (await session.execute(query)).scalar_one()


async def test_a_queued_answer_is_forgotten_when_the_resident_blocks_the_bot(kigen, clock):
    chat = Chat(kigen.conversation, user="u1")
    await chat.say("/start")
    await kigen.conversation.deliver_later("test", "u1", await chat.say("/mydata"))
    assert await reply_bodies_left(kigen) == 1
    await chat.unfollow()
    (row,) = await reply_rows(kigen.db)
    assert (row.status, row.last_error) == ("dropped", "unfollowed")
    assert await reply_bodies_left(kigen) == 0


async def test_a_queued_answer_is_dropped_after_a_day_or_when_the_resident_left(kigen, clock):
    for user in ("u1", "u2"):
        await Chat(kigen.conversation, user=user).say("/start")
        reply = Reply(text=f"for {user}", intent="test", language="en")
        await kigen.conversation.deliver_later("test", user, [reply])
    leaving = Chat(kigen.conversation, user="u2")
    await leaving.say("/forget")
    await leaving.press("forget:yes")
    await kigen.conversation.deliver_later("test", "nobody", [reply])  # never met: not kept
    clock.move_to(clock.now() + timedelta(days=1))
    sender = RecordingSender()
    await delivery(kigen, sender).run_once()
    assert sender.sent == []
    (row,) = await reply_rows(kigen.db)
    assert (row.status, row.last_error) == ("dropped", "stale")
    assert await reply_bodies_left(kigen) == 0


def test_backoff_grows_and_is_capped():
    assert backoff(1, None) == timedelta(seconds=5)
    assert backoff(3, None) == timedelta(seconds=20)
    assert backoff(20, None) == timedelta(hours=1)
    assert backoff(1, 90) == timedelta(seconds=90)


async def test_a_blocked_resident_is_marked_inactive_and_nothing_more_is_sent(kigen, clock):
    await save_date(kigen)
    sender = RecordingSender()
    sender.script = [SendResult(Outcome.GONE, error="Forbidden: bot was blocked by the user")]
    job = delivery(kigen, sender)
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    await job.run_once()
    clock.move_to(datetime(2027, 3, 20, 9, 0, tzinfo=JST))
    await job.run_once()
    assert sender.sent == []
    async with kigen.db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
    assert user.active is False
    assert {row.status for row in await rows(kigen)} == {"failed", "dropped"}


async def test_two_workers_never_claim_the_same_row(kigen, clock):
    for number in range(10):
        await save_date(kigen, user=f"u{number}")
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    async with kigen.db.session() as session:
        first = await outbox.claim_due(
            session,
            now=clock.now(),
            worker="a",
            limit=6,
            lease=timedelta(minutes=2),
            channels=["test"],
        )
    async with kigen.db.session() as session:
        second = await outbox.claim_due(
            session,
            now=clock.now(),
            worker="b",
            limit=6,
            lease=timedelta(minutes=2),
            channels=["test"],
        )
    assert len(first) == 6 and len(second) == 4
    assert not set(first) & set(second)


async def test_a_claim_whose_worker_died_before_sending_is_taken_over(kigen, clock):
    await save_date(kigen)
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    async with kigen.db.session() as session:
        await outbox.claim_due(
            session,
            now=clock.now(),
            worker="dead",
            limit=10,
            lease=timedelta(minutes=2),
            channels=["test"],
        )
    sender = RecordingSender()
    job = delivery(kigen, sender)
    assert await job.run_once() == 0
    clock.move_to(datetime(2026, 12, 15, 9, 3, tzinfo=JST))
    assert await job.run_once() == 1
    assert len(sender.sent) == 1


async def test_an_interrupted_send_is_not_repeated_unless_the_platform_drops_repeats(kigen, clock):
    await save_date(kigen, user="plain")
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    async with kigen.db.session() as session:
        (row_id,) = await outbox.claim_due(
            session,
            now=clock.now(),
            worker="dead",
            limit=10,
            lease=timedelta(minutes=2),
            channels=["test"],
        )
        assert await outbox.mark_sending(
            session, [row_id], "dead", lease_until=clock.now() + timedelta(minutes=2)
        ) == [row_id]
    clock.move_to(datetime(2026, 12, 15, 9, 5, tzinfo=JST))
    sender = RecordingSender(idempotent=False)
    await delivery(kigen, sender).run_once()
    assert sender.sent == []
    async with kigen.db.session() as session:
        row = await session.get(OutboxMessage, row_id)
    assert row.status == "failed" and "interrupted" in row.last_error

    idempotent = RecordingSender(idempotent=True)
    async with kigen.db.session() as session:
        row = await session.get(OutboxMessage, row_id)
        row.status, row.lease_until = "sending", clock.now() - timedelta(seconds=1)
    await delivery(kigen, idempotent).run_once()
    assert [key for _, key, _ in idempotent.sent] == [f"outbox:{row_id}"]


async def test_one_at_a_time_leaves_only_the_message_being_sent_in_doubt(kigen, clock):
    """A sender that cannot drop repeats: while a message is being sent, it is the only row
    marked as sending, and every message before it is already recorded as sent."""
    for number in range(4):
        await save_date(kigen, user=f"u{number}")
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    seen: list[tuple[int, int]] = []

    class Watching(RecordingSender):
        async def send(self, recipients, replies, *, key):  # type: ignore[no-untyped-def]
            statuses = [row.status for row in await rows(kigen)]
            seen.append((statuses.count("sending"), statuses.count("sent")))
            return await super().send(recipients, replies, key=key)

    sender = Watching(idempotent=False)
    assert await delivery(kigen, sender).run_once() == 4
    assert seen == [(1, 0), (1, 1), (1, 2), (1, 3)]
    assert [row.status for row in await rows(kigen)].count("sent") == 4


@pytest.mark.parametrize("idempotent", [False, True], ids=["repeats-arrive", "repeats-dropped"])
async def test_up_to_in_flight_messages_go_at_once_across_batches(kigen, clock, idempotent):
    """Three on their way at once, in batches of four: every result is recorded. Where the
    platform does not drop repeats, never more than three rows are marked as sending."""
    for number in range(10):
        await save_date(kigen, user=f"u{number}")
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    flying, most, in_doubt = 0, 0, []
    three_flew = asyncio.Event()

    class Slow(RecordingSender):
        async def send(self, recipients, replies, *, key):  # type: ignore[no-untyped-def]
            nonlocal flying, most
            flying += 1
            most = max(most, flying)
            in_doubt.append([row.status for row in await rows(kigen)].count("sending"))
            if flying == 3:
                three_flew.set()
            with contextlib.suppress(TimeoutError):  # only when three never fly at once
                await asyncio.wait_for(three_flew.wait(), 5)
            flying -= 1
            return await super().send(recipients, replies, key=key)

    sender = Slow(idempotent=idempotent, in_flight=3)
    job = Delivery(kigen.db, {"test": sender}, kigen.notices, clock, batch_size=4)
    assert await job.run_once() == 10
    assert most == 3
    if not idempotent:
        assert max(in_doubt) == 3
    statuses = [row.status for row in await rows(kigen)]
    assert statuses.count("sent") == 10 and "sending" not in statuses
    assert sorted(recipient for recipient, _, _ in sender.sent) == [f"u{n}" for n in range(10)]


async def test_a_message_that_outlasts_its_lease_in_flight_is_still_ours_to_record(kigen, clock):
    """One message waits out a long Retry-After while the lane claims the next: the lane
    must not take it for a message of a dead worker."""
    for number in range(3):
        await save_date(kigen, user=f"u{number}")
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    flood_wait_over = asyncio.Event()

    class FloodWait(RecordingSender):
        async def send(self, recipients, replies, *, key):  # type: ignore[no-untyped-def]
            if recipients == ["u0"]:
                await flood_wait_over.wait()
                return SendResult(Outcome.RETRY, retry_after=200, error="429 retry after")
            if recipients == ["u1"]:
                clock.move_to(clock.now() + timedelta(minutes=3))  # longer than the lease
            result = await super().send(recipients, replies, key=key)
            if recipients == ["u2"]:
                flood_wait_over.set()
            return result

    sender = FloodWait(idempotent=False, in_flight=2)
    job = Delivery(kigen.db, {"test": sender}, kigen.notices, clock, batch_size=1)
    await job.run_once()
    windows = {row.user_id: row for row in await rows(kigen) if row.step == "window"}
    first, *others = (windows[user_id] for user_id in sorted(windows))
    assert (first.status, first.last_error) == ("pending", "429 retry after")
    assert [row.status for row in others] == ["sent", "sent"]


async def test_a_failed_mark_does_not_roll_back_the_result_before_it(kigen, clock, monkeypatch):
    for number in range(2):
        await save_date(kigen, user=f"u{number}")
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    real_mark = outbox.mark_sending
    calls = 0

    async def mark_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("lock timeout")
        return await real_mark(*args, **kwargs)

    monkeypatch.setattr(outbox, "mark_sending", mark_once)
    sender = RecordingSender(idempotent=False)
    await delivery(kigen, sender).run_once()  # the lane's failure is logged, not raised
    assert len(sender.sent) == 1
    statuses = [row.status for row in await rows(kigen)]
    assert statuses.count("sent") == 1 and "sending" not in statuses


async def test_renewing_starts_a_new_ladder_and_keeps_history(kigen, clock):
    chat = await save_date(kigen)
    sender = RecordingSender()
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    await delivery(kigen, sender).run_once()
    listing = await chat.say("/list")
    renew = next(c.id for c in listing[0].choices if c.id.startswith("renew:"))
    await chat.press(renew)
    await chat.say("2028-03-15")
    steps = [(row.step, row.status, row.due_at.astimezone(JST).date()) for row in await rows(kigen)]
    assert steps[0] == ("window", "sent", date(2026, 12, 15))
    assert ("month", "pending", date(2028, 2, 15)) in steps
    assert ("window", "pending", date(2027, 12, 15)) in steps  # a new date, a new ladder


async def test_the_daily_planning_job_repairs_missing_rows_and_adds_nothing_twice(kigen, clock):
    from sqlalchemy import delete

    from core.reminders import plan_missing

    for number in range(5):
        await save_date(kigen, user=f"p{number}")
    before = sorted((row.expiry_id, row.step, row.due_at) for row in await rows(kigen))
    assert await plan_missing(kigen.db, clock.now(), batch_size=2) == 0
    async with kigen.db.session() as session:
        await session.execute(delete(OutboxMessage).where(OutboxMessage.step == "month"))
    assert await plan_missing(kigen.db, clock.now(), batch_size=2) == 5
    assert sorted((row.expiry_id, row.step, row.due_at) for row in await rows(kigen)) == before


def test_every_start_has_a_worker_id_of_its_own(monkeypatch):
    """A container restarted with the same host name and process id must not take the rows
    its previous life left mid-send for its own (they would never be settled). The id fits
    its column whatever the host name's length (Linux allows 64 characters)."""
    assert default_worker_id() != default_worker_id()
    monkeypatch.setattr("socket.gethostname", lambda: "h" * 64)
    assert len(default_worker_id()) <= OutboxMessage.__table__.c.claimed_by.type.length
