"""Broadcasts: audiences, language fallback, lifecycle, approval, cancel, resume, opt-out."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, insert, select

from core import broadcast
from core.broadcast import Audience, BroadcastError
from core.outbox import Delivery
from core.store import expiries, users
from core.store.models import (
    Broadcast,
    BroadcastBatch,
    BroadcastRecipient,
    OutboxMessage,
    User,
)
from tests.test_delivery import RecordingSender


async def residents(kigen, specs) -> None:
    """specs: (platform id, channel, language, updates on, document kind or None).
    Inserted in bulk: some tests need thousands."""
    now = kigen.clock.now()
    async with kigen.db.session() as session:
        rows = []
        for platform_id, channel, language, updates, _ in specs:
            user = users.new_user(channel, platform_id, now)
            user.language, user.updates_opt_in = language, updates
            rows.append(user.model_dump(exclude={"id"}))
        await session.execute(insert(User), rows)
        stored = await session.execute(select(User.channel, User.platform_id, User.id))
        ids = {(channel, platform_id): user_id for channel, platform_id, user_id in stored}
        for platform_id, channel, _, _, kind in specs:
            if kind:
                user_id = ids[channel, platform_id]
                await expiries.add_expiry(session, user_id, kind, date(2027, 1, 10), now)


def sender(channel: str = "test") -> RecordingSender:
    recording = RecordingSender()
    recording.channel = channel
    return recording


async def send_all(kigen, recording: RecordingSender) -> None:
    delivery = Delivery(kigen.db, {recording.channel: recording}, kigen.notices, kigen.clock)
    for _ in range(20):
        await broadcast.materialise(kigen.db, kigen.clock.now())
        if not await delivery.run_once():
            break
    await broadcast.materialise(kigen.db, kigen.clock.now())


async def new(kigen, operator="ed", **fields) -> int:
    fields.setdefault("title", "Fees")
    fields.setdefault("texts", {"en": "Fees change on 1 April.", "vi": "Lệ phí thay đổi từ 1/4."})
    return await broadcast.create(kigen.db, kigen.clock.now(), operator, **fields)


async def approve_and_send(kigen, broadcast_id, approver="boss") -> None:
    await broadcast.approve(
        kigen.db, kigen.clock.now(), broadcast_id, approver, "approver", two_person=True
    )
    await broadcast.start(kigen.db, kigen.clock.now(), broadcast_id, approver)


async def test_only_residents_who_turned_updates_on_get_it_in_their_language(kigen):
    await residents(
        kigen,
        [
            ("en1", "test", "en", True, None),
            ("vi1", "test", "vi", True, None),
            ("off", "test", "vi", False, None),
            ("never", "test", "en", None, None),
            ("ja1", "test", "ja", True, None),
        ],
    )
    recording = sender()
    broadcast_id = await new(kigen)
    async with kigen.db.session() as session:
        counted = await broadcast.count(
            session, await session.get(Broadcast, broadcast_id), kigen.clock.now()
        )
    assert (counted.matching, counted.reached) == (3, 3)
    await approve_and_send(kigen, broadcast_id)
    await send_all(kigen, recording)
    got = {recipient: replies[0] for recipient, _, replies in recording.sent}
    assert set(got) == {"en1", "vi1", "ja1"}
    assert got["vi1"].text.startswith("Lệ phí") and got["vi1"].language == "vi"
    assert got["ja1"].text.startswith("Fees change")  # the English fallback the operator chose
    assert "/updates" in got["en1"].text
    async with kigen.db.session() as session:
        assert (await session.get(Broadcast, broadcast_id)).status == "done"
        assert (await broadcast_progress(session, broadcast_id))["sent"] == 3


async def broadcast_progress(session, broadcast_id):
    from core.store.broadcasts import progress

    return await progress(session, broadcast_id)


async def test_skip_rule_never_sends_another_language(kigen):
    await residents(kigen, [("ja1", "test", "ja", True, None), ("vi1", "test", "vi", True, None)])
    recording = sender()
    broadcast_id = await new(kigen, fallback="skip", texts={"vi": "Lệ phí thay đổi."})
    await approve_and_send(kigen, broadcast_id)
    await send_all(kigen, recording)
    assert [recipient for recipient, _, _ in recording.sent] == ["vi1"]


async def test_a_page_ending_with_skipped_residents_still_moves_on(kigen):
    # Pages of 2: the second holds only residents whose language has no text.
    await residents(
        kigen,
        [
            (f"p{n}", "test", lang, True, None)
            for n, lang in enumerate(["vi", "vi", "ja", "ja", "vi"])
        ],
    )
    broadcast_id = await new(kigen, fallback="skip", texts={"vi": "Lệ phí thay đổi."})
    await approve_and_send(kigen, broadcast_id)
    await broadcast.materialise(kigen.db, kigen.clock.now(), page_size=2)
    recording = sender()
    await send_all(kigen, recording)
    assert sorted(r for r, _, _ in recording.sent) == ["p0", "p1", "p4"]
    async with kigen.db.session() as session:
        assert (await session.get(Broadcast, broadcast_id)).status == "done"


async def test_audience_filters_combine(kigen, clock):
    await residents(
        kigen,
        [
            ("a", "line", "en", True, "residence_card"),
            ("b", "test", "en", True, "residence_card"),
            ("c", "line", "en", True, "my_number_card"),
            ("d", "line", "vi", True, "residence_card"),
            ("e", "line", "en", True, None),
        ],
    )
    audience = Audience(
        channels=("line",),
        languages=("en",),
        document_kinds=("residence_card",),
        expiry_within_days=60,
    )
    broadcast_id = await new(kigen, audience=audience)
    async with kigen.db.session() as session:
        item = await session.get(Broadcast, broadcast_id)
        assert (await broadcast.count(session, item, clock.now())).matching == 1
        item.audience = Audience(expiry_within_days=10).to_dict()
        assert (await broadcast.count(session, item, clock.now())).matching == 0
        item.audience = Audience(saved_after="2026-11-25").to_dict()
        assert (await broadcast.count(session, item, clock.now())).matching == 4
        item.audience = Audience(saved_before="2026-11-25").to_dict()
        assert (await broadcast.count(session, item, clock.now())).matching == 0


async def test_lifecycle_and_the_two_person_rule(kigen):
    broadcast_id = await new(kigen, operator="ed")
    now = kigen.clock.now()
    with pytest.raises(BroadcastError, match="approved"):
        await broadcast.start(kigen.db, now, broadcast_id, "ed")
    with pytest.raises(BroadcastError, match="second operator"):
        await broadcast.approve(kigen.db, now, broadcast_id, "ed", "admin", two_person=True)
    with pytest.raises(BroadcastError, match="role"):
        await broadcast.approve(kigen.db, now, broadcast_id, "other", "editor", two_person=True)
    await broadcast.approve(kigen.db, now, broadcast_id, "ed", "admin", two_person=False)
    with pytest.raises(BroadcastError, match="draft"):
        await broadcast.approve(kigen.db, now, broadcast_id, "boss", "admin", two_person=True)
    await broadcast.start(kigen.db, now, broadcast_id, "ed")
    await broadcast.cancel(kigen.db, now, broadcast_id, "ed")
    with pytest.raises(BroadcastError, match="already"):
        await broadcast.cancel(kigen.db, now, broadcast_id, "ed")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": " "}, "title"),
        ({"texts": {"en": " "}}, "text"),
        ({"texts": {"vi": "x"}}, "English fallback"),
        ({"link": "http://x"}, "https"),
        ({"fallback": "japanese"}, "fallback"),
    ],
)
async def test_drafts_are_validated(kigen, fields, message):
    with pytest.raises(BroadcastError, match=message):
        await new(kigen, **fields)


class CancellingSender(RecordingSender):
    """Sends like RecordingSender; while sending the third message, an operator cancels."""

    def __init__(self, kigen, broadcast_id: int, *, idempotent: bool = False) -> None:
        super().__init__(idempotent=idempotent)
        self.kigen, self.broadcast_id = kigen, broadcast_id

    async def send(self, recipients, replies, *, key):
        if len(self.sent) == 2:
            now = self.kigen.clock.now()
            await broadcast.cancel(self.kigen.db, now, self.broadcast_id, "boss")
        return await super().send(recipients, replies, key=key)


@pytest.mark.parametrize("idempotent", [False, True], ids=["one-by-one", "batch-marked"])
async def test_cancel_stops_what_is_not_yet_sent(kigen, idempotent):
    await residents(kigen, [(f"u{n}", "test", "en", True, None) for n in range(30)])
    broadcast_id = await new(kigen)
    await approve_and_send(kigen, broadcast_id)
    await broadcast.materialise(kigen.db, kigen.clock.now())
    recording = CancellingSender(kigen, broadcast_id, idempotent=idempotent)
    delivery = Delivery(kigen.db, {"test": recording}, kigen.notices, kigen.clock, batch_size=10)
    # The second batch is claimed and rendered while the first is sent: cancelling still
    # stops it. Messages marked one by one stop after the one being sent; a batch marked at
    # once (where the platform drops repeats) is finished.
    await delivery.run_once()
    await send_all(kigen, recording)
    sent = 10 if idempotent else 3
    assert len(recording.sent) == sent
    async with kigen.db.session() as session:
        counts = await broadcast_progress(session, broadcast_id)
    assert counts == {"queued": 0, "sent": sent, "failed": 0, "blocked": 0, "dropped": 30 - sent}


async def test_materialising_resumes_after_a_crash_and_queues_nobody_twice(kigen):
    await residents(kigen, [(f"u{n:03d}", "test", "en", True, None) for n in range(120)])
    broadcast_id = await new(kigen)
    await approve_and_send(kigen, broadcast_id)
    from core.broadcast import _queue_page  # one page queued, then the process died

    assert await _queue_page(kigen.db, kigen.clock.now(), broadcast_id, 50) == 50
    await broadcast.materialise(kigen.db, kigen.clock.now(), page_size=50)
    await broadcast.materialise(kigen.db, kigen.clock.now(), page_size=50)
    async with kigen.db.session() as session:
        queued = await session.scalar(select(func.count()).select_from(BroadcastRecipient))
        distinct = await session.scalar(
            select(func.count(func.distinct(BroadcastRecipient.user_id)))
        )
    assert queued == distinct == 120
    recording = sender()
    await send_all(kigen, recording)
    assert sorted(r for r, _, _ in recording.sent) == [f"u{n:03d}" for n in range(120)]


async def test_line_residents_are_batched_500_per_call(kigen):
    await residents(
        kigen, [(f"U{n:04d}", "line", "en" if n % 3 else "vi", True, None) for n in range(1200)]
    )
    broadcast_id = await new(kigen)
    await approve_and_send(kigen, broadcast_id)
    await broadcast.materialise(kigen.db, kigen.clock.now())
    async with kigen.db.session() as session:
        rows = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert rows == 2 + 1  # 800 English residents in 2 batches, 400 Vietnamese in 1


async def test_every_batch_holds_one_channel_and_text_language_and_everyone_once(kigen):
    languages = ("en", "vi", "ja", None)  # no Japanese text: English; None: English too
    specs = [
        (f"r{n:04d}", "line" if n % 5 else "telegram", languages[n % 4], n % 7 != 0, None)
        for n in range(1500)
    ]
    await residents(kigen, specs)
    earlier = await new(kigen)  # a batch already queued must not share ids with the new ones
    await broadcast.test_send(kigen.db, kigen.clock.now(), earlier, ("line", 1), "ed")
    broadcast_id = await new(kigen)
    await approve_and_send(kigen, broadcast_id)
    await broadcast.materialise(kigen.db, kigen.clock.now(), page_size=700)
    async with kigen.db.session() as session:
        rows = (
            await session.execute(
                select(
                    BroadcastBatch.id,
                    BroadcastBatch.channel,
                    BroadcastBatch.language,
                    User.platform_id,
                    User.channel,
                    User.language,
                )
                .join(BroadcastRecipient, BroadcastRecipient.batch_id == BroadcastBatch.id)
                .join(User, User.id == BroadcastRecipient.user_id)
                .where(BroadcastBatch.broadcast_id == broadcast_id)
            )
        ).all()
        outbox_batches = (
            await session.scalars(
                select(OutboxMessage.batch_id).where(OutboxMessage.batch_id.is_not(None))
            )
        ).all()
    wanted = {platform_id for platform_id, _, _, updates, _ in specs if updates}
    assert sorted(row[3] for row in rows) == sorted(wanted)
    sizes: dict[int, int] = {}
    channels: dict[int, str] = {}
    for batch_id, channel, text_language, _, user_channel, user_language in rows:
        assert channel == user_channel
        assert text_language == (user_language if user_language in ("en", "vi") else "en")
        sizes[batch_id] = sizes.get(batch_id, 0) + 1
        channels[batch_id] = channel
    assert all(sizes[b] <= (500 if channels[b] == "line" else 1) for b in sizes)
    assert sorted(outbox_batches) == sorted({*sizes, *await batches_of(kigen, earlier)})
    # Pages of 700 cut the LINE residents of each language into several partial batches.
    assert sum(1 for batch_id in sizes if sizes[batch_id] > 1) > 2


async def batches_of(kigen, broadcast_id) -> list[int]:
    async with kigen.db.session() as session:
        return list(
            await session.scalars(
                select(BroadcastBatch.id).where(BroadcastBatch.broadcast_id == broadcast_id)
            )
        )


async def test_a_scheduled_broadcast_waits_for_its_time(kigen, clock):
    await residents(kigen, [("u1", "test", "en", True, None)])
    later = clock.now() + timedelta(hours=2)
    broadcast_id = await new(kigen, send_at=later)
    await approve_and_send(kigen, broadcast_id)
    recording = sender()
    await send_all(kigen, recording)
    assert recording.sent == []
    clock.move_to(later + timedelta(seconds=1))
    await send_all(kigen, recording)
    assert len(recording.sent) == 1


async def test_turning_updates_off_after_queueing_is_respected(kigen, chat):
    await chat.say("/updates")
    await chat.press("updates:on")
    broadcast_id = await new(kigen)
    await approve_and_send(kigen, broadcast_id)
    await broadcast.materialise(kigen.db, kigen.clock.now())
    await chat.press("updates:off")
    recording = sender()
    await send_all(kigen, recording)
    assert recording.sent == []


async def test_a_forgotten_resident_leaves_no_trace_in_a_queued_broadcast(kigen, chat):
    await chat.say("/updates")
    await chat.press("updates:on")
    broadcast_id = await new(kigen)
    await approve_and_send(kigen, broadcast_id)
    await broadcast.materialise(kigen.db, kigen.clock.now())
    await chat.say("/forget")
    await chat.press("forget:yes")
    async with kigen.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(BroadcastRecipient)) == 0
