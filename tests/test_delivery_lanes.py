"""Delivery lanes: each channel is sent at its own pace, and one run of the job goes on
until nothing is due."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from core import broadcast
from core.outbox import Delivery
from core.store.models import OutboxMessage
from core.store.outbox import SENDING
from tests.helpers import wait_for_async
from tests.test_broadcast import approve_and_send, new, residents, sender
from tests.test_delivery import RecordingSender


class BlockedSender(RecordingSender):
    """A platform that does not answer until the test lets it."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self.channel = channel
        self.answer = asyncio.Event()

    async def send(self, recipients, replies, *, key):
        await self.answer.wait()
        return await super().send(recipients, replies, key=key)


async def statuses_are(kigen, expected: dict[str, int]) -> bool:
    async with kigen.db.session() as session:
        result = await session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        return dict(result.all()) == expected


async def queue_broadcast(kigen, specs) -> int:
    await residents(kigen, specs)
    broadcast_id = await new(kigen)
    await approve_and_send(kigen, broadcast_id)
    await broadcast.materialise(kigen.db, kigen.clock.now())
    return broadcast_id


async def test_a_platform_that_hangs_does_not_hold_up_another(kigen):
    await queue_broadcast(
        kigen,
        [(f"s{n}", "slow", "en", True, None) for n in range(5)]
        + [(f"f{n}", "fast", "en", True, None) for n in range(25)],
    )
    slow, fast = BlockedSender("slow"), sender("fast")
    delivery = Delivery(
        kigen.db, {"slow": slow, "fast": fast}, kigen.notices, kigen.clock, batch_size=10
    )
    claims: Counter[str] = Counter()
    claim = delivery._claim

    async def counted_claim(channel: str):  # type: ignore[no-untyped-def]
        claimed = await claim(channel)
        claims[channel] += 1
        return claimed

    delivery._claim = counted_claim  # type: ignore[method-assign]
    run = asyncio.create_task(delivery.run_once())
    assert await wait_for_async(lambda: len(fast.sent) == 25, 10)
    assert sorted(user for user, _, _ in fast.sent) == sorted(f"f{n}" for n in range(25))
    assert slow.sent == [] and not run.done()
    # The fast lane ends once it has recorded its last batch and found nothing more due (a
    # moment after the last send; longer on a loaded machine). The slow lane has claimed
    # ahead and found nothing: on a loaded machine that claim once came after the second
    # broadcast, and the hanging run took the slow share of it too.
    assert await wait_for_async(lambda: "fast" not in delivery._busy, 10)
    assert await wait_for_async(lambda: claims["slow"] == 2, 10)
    # A new broadcast while the slow lane still hangs: the fast lane runs again at once.
    await queue_broadcast(kigen, [("g0", "fast", "en", True, None)])
    assert await delivery.run_once() == 26  # f0 to f24 and g0, for the second broadcast
    assert len(fast.sent) == 51
    slow.answer.set()
    assert await run == 30
    assert len(slow.sent) == 5
    assert await delivery.run_once() == 5  # the slow lane's share of the second broadcast


async def test_one_run_goes_on_until_nothing_is_due(kigen):
    await queue_broadcast(kigen, [(f"u{n}", "test", "en", True, None) for n in range(25)])
    recording = sender()
    delivery = Delivery(kigen.db, {"test": recording}, kigen.notices, kigen.clock, batch_size=10)
    assert await delivery.run_once() == 25  # batches of 10, 10 and 5
    assert len({user for user, _, _ in recording.sent}) == 25
    assert await delivery.run_once() == 0


async def test_stopping_lets_the_batch_being_sent_finish_and_claims_no_other(kigen):
    await queue_broadcast(kigen, [(f"u{n}", "test", "en", True, None) for n in range(30)])
    blocked = BlockedSender("test")
    delivery = Delivery(kigen.db, {"test": blocked}, kigen.notices, kigen.clock, batch_size=10)
    run = asyncio.create_task(delivery.run_once())
    # The first row is being sent, the rest of its batch waits, the next batch is claimed.
    expected = {"sending": 1, "claimed": 19, "pending": 10}
    assert await wait_for_async(lambda: statuses_are(kigen, expected), 10)
    stopping = asyncio.create_task(delivery.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()
    blocked.answer.set()
    await stopping
    handled = await run
    # The batch being sent and the one claimed ahead are both sent; no third is claimed.
    assert handled == 20 and len(blocked.sent) == 20
    assert await delivery.run_once() == 0


class BrokenOn:
    """Notices that fail on the rows of one channel, as a database error would."""

    def __init__(self, notices, channel: str) -> None:
        self.notices, self.channel = notices, channel

    async def render_many(self, session, rows, now):
        if any(row.channel == self.channel for row in rows):
            raise RuntimeError("the database went away")
        return await self.notices.render_many(session, rows, now)


async def test_a_lane_that_fails_does_not_stop_the_others(kigen, caplog):
    await queue_broadcast(
        kigen,
        [(f"b{n}", "broken", "en", True, None) for n in range(3)]
        + [(f"f{n}", "fast", "en", True, None) for n in range(12)],
    )
    broken, fast = sender("broken"), sender("fast")
    notices = BrokenOn(kigen.notices, "broken")
    delivery = Delivery(
        kigen.db, {"broken": broken, "fast": fast}, notices, kigen.clock, batch_size=5
    )
    assert await delivery.run_once() == 12
    assert len(fast.sent) == 12 and broken.sent == []
    assert "delivery to broken failed" in caplog.text


async def test_a_tick_starts_the_lanes_in_the_background_and_returns(kigen):
    await queue_broadcast(kigen, [(f"u{n}", "test", "en", True, None) for n in range(12)])
    blocked = BlockedSender("test")
    delivery = Delivery(kigen.db, {"test": blocked}, kigen.notices, kigen.clock, batch_size=5)
    await asyncio.wait_for(delivery.tick(), timeout=5)
    expected = {"sending": 1, "claimed": 9, "pending": 2}
    assert await wait_for_async(lambda: statuses_are(kigen, expected), 10)
    await delivery.tick()  # the lane is busy: nothing more starts
    blocked.answer.set()
    await delivery.stop()
    assert len(blocked.sent) == 10  # the batch being sent and the one claimed ahead


async def test_a_lane_cancelled_gives_back_the_batch_it_had_claimed_ahead(kigen):
    """The next batch was claimed while the first was leaving; the lane is then cancelled
    (a shutdown that could not wait): that batch is due again at once instead of after its
    lease."""
    await queue_broadcast(kigen, [(f"u{n}", "test", "en", True, None) for n in range(4)])
    blocked = BlockedSender("test")
    blocked.idempotent = True  # in_flight 1: the first message holds up the rest
    delivery = Delivery(kigen.db, {"test": blocked}, kigen.notices, kigen.clock, batch_size=2)
    run = asyncio.create_task(delivery.run_once())
    ahead = {SENDING: 2, "claimed": 2}
    assert await wait_for_async(lambda: statuses_are(kigen, ahead), 10)
    run.cancel()
    blocked.answer.set()  # the message on its way is answered and recorded
    await asyncio.gather(run, return_exceptions=True)
    async with kigen.db.session() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        states = [(row.status, row.attempts) for row in rows]
    # The first batch: one message sent, one marked and left waiting for its slot.
    assert states == [("sent", 1), (SENDING, 1), ("pending", 0), ("pending", 0)]
