"""Turns of several residents in one transaction (Conversation with core.batching)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select

from core.app import build
from core.flows import faq
from core.messages import Event, Incoming
from core.store.models import (
    DialogueState,
    OutboxKind,
    OutboxMessage,
    ProcessedEvent,
    QuestionStat,
    User,
)

QUESTIONS = [
    "When can I renew my residence card?",
    "在留カードの更新はいつからできますか？",
    "Khi nào tôi có thể gia hạn thẻ cư trú?",
    "How do I renew my My Number Card?",
    "Hello",
]


def count_transactions(kigen, monkeypatch) -> list[int]:
    """From now on, counts the database transactions Kigen opens (in a one-item list)."""
    opened = [0]
    session = kigen.db.session

    @asynccontextmanager
    async def counted():
        opened[0] += 1
        async with session() as inner:
            yield inner

    monkeypatch.setattr(kigen.db, "session", counted)
    return opened


def question(user: str, number: int, channel: str = "line") -> Incoming:
    return Incoming.from_text(channel, user, QUESTIONS[number % len(QUESTIONS)])


async def test_turns_that_arrive_together_get_the_answers_they_would_get_alone(kigen, monkeypatch):
    """Forty new residents write at once, on LINE (with event ids) and on Telegram
    (without): each gets the answer, in the language, that the same message got when it
    came alone; each is stored once; the turns shared a few transactions."""
    handle = kigen.conversation.handle
    alone = [await handle(question(f"alone-{n}", n)) for n in range(len(QUESTIONS))]
    opened = count_transactions(kigen, monkeypatch)
    together = await asyncio.gather(
        *(handle(question(f"U{n}", n), event_id=f"event-{n}") for n in range(30)),
        *(handle(question(f"{n}", n, channel="telegram")) for n in range(30, 40)),
    )
    for number, replies in enumerate(together):
        expected = alone[number % len(QUESTIONS)]
        assert [(r.intent, r.language, r.text) for r in replies] == [
            (r.intent, r.language, r.text) for r in expected
        ]
    assert opened[0] <= 3  # the first turn alone, then the others (at most 64 a batch)
    async with kigen.db.session() as session:
        stored = await session.scalar(select(func.count()).select_from(User))
    assert stored == len(QUESTIONS) + 40


async def test_a_turn_that_fails_in_a_batch_fails_alone_and_loses_nothing(kigen, monkeypatch):
    """One turn of a batch raises: its resident gets the error (the adapter answers it with
    an apology), the others their answers; nothing of the failed turn is kept, so the
    platform's redelivery of its event is handled in full."""
    ask = faq.ask

    async def fails_on_boom(ctx, text):
        if "boom" in text:
            raise RuntimeError("a flow failed")
        return await ask(ctx, text)

    monkeypatch.setattr(faq, "ask", fails_on_boom)
    handle = kigen.conversation.handle
    boom = Incoming.from_text("line", "U-boom", "boom: when can I renew my residence card?")
    results = await asyncio.gather(
        *(handle(question(f"U{n}", n % 4), event_id=f"event-{n}") for n in range(6)),
        handle(boom, event_id="event-boom"),
        return_exceptions=True,
    )
    assert isinstance(results[-1], RuntimeError)
    assert all(replies[0].language for replies in results[:-1])
    # The questions answered before the failure ran twice; they are counted once.
    await kigen.conversation.tally.flush(kigen.db)
    async with kigen.db.session() as session:
        counted = await session.scalar(select(func.sum(QuestionStat.count)))
    assert counted == 6
    async with kigen.db.session() as session:
        users = set((await session.execute(select(User.platform_id))).scalars())
        events = set((await session.execute(select(ProcessedEvent.event_id))).scalars())
    assert users == {f"U{n}" for n in range(6)}
    assert events == {f"event-{n}" for n in range(6)}
    monkeypatch.setattr(faq, "ask", ask)
    redelivered = await handle(boom, event_id="event-boom")
    assert redelivered[0].intent.startswith("faq:")


async def test_a_redelivery_in_a_batch_is_dropped_and_the_others_answered(kigen):
    handle = kigen.conversation.handle
    first = await handle(question("U-again", 0), event_id="event-again")
    assert first
    again, *others = await asyncio.gather(
        handle(question("U-again", 0), event_id="event-again"),
        *(handle(question(f"U{n}", n), event_id=f"event-{n}") for n in range(5)),
    )
    assert again == []
    assert all(replies for replies in others)


@pytest.mark.parametrize("unfollowed_first", [True, False])
async def test_each_turn_of_a_batch_acts_for_its_own_resident(kigen, unfollowed_first):
    """An unfollow (nothing to store) and new residents in one batch, half of them starting
    to add a date (a dialogue state is stored for them): each new resident gets their own
    row, and the states go to those who started, whatever comes first."""
    handle = kigen.conversation.handle
    await handle(question("U-leaving", 0))
    leaving = Incoming("line", "U-leaving", event=Event.UNFOLLOW)
    turns = [
        handle(Incoming.from_text("line", f"U{n}", "/remind" if n % 2 else QUESTIONS[n]))
        for n in range(4)
    ]
    turns.insert(0 if unfollowed_first else 4, handle(leaving))
    await asyncio.gather(*turns)
    async with kigen.db.session() as session:
        rows = (await session.execute(select(User.platform_id, User.language, User.active))).all()
        started = set(
            (
                await session.execute(
                    select(User.platform_id).join(DialogueState, DialogueState.user_id == User.id)
                )
            ).scalars()
        )
    by_id = {platform_id: (language, active) for platform_id, language, active in rows}
    assert by_id["U-leaving"][1] is False
    assert [by_id[f"U{n}"][0] for n in (0, 2)] == ["en", "vi"]
    assert started == {"U1", "U3"}


async def test_an_answer_whose_caller_left_during_its_batch_is_sent_later(kigen, monkeypatch):
    """The webhook request of a turn is cancelled while its batch runs: the turn and its
    event are stored, so LINE's redelivery gets nothing, and the answer goes out through
    the outbox instead of being lost."""
    ask, started, release = faq.ask, asyncio.Event(), asyncio.Event()

    async def slow(ctx, text):
        started.set()
        await release.wait()
        return await ask(ctx, text)

    monkeypatch.setattr(faq, "ask", slow)
    handle = kigen.conversation.handle
    staying = asyncio.create_task(handle(question("U-staying", 0), event_id="event-staying"))
    leaving = asyncio.create_task(handle(question("U-leaving", 3), event_id="event-leaving"))
    await started.wait()  # the batch of both runs
    leaving.cancel()
    release.set()
    assert (await staying)[0].intent.startswith("faq:")
    queued = None
    for _ in range(500):  # the batch queues it after answering the caller that stayed
        async with kigen.db.session() as session:
            queued = await session.scalar(
                select(OutboxMessage.body)
                .join(User, User.id == OutboxMessage.user_id)
                .where(User.platform_id == "U-leaving", OutboxMessage.kind == OutboxKind.REPLY)
            )
        if queued is not None:
            break
        await asyncio.sleep(0.01)
    assert queued is not None
    assert queued[0]["intent"].startswith("faq:")
    assert await handle(question("U-leaving", 3), event_id="event-leaving") == []


async def test_one_residents_messages_arriving_together_run_in_order(kigen):
    """Five messages of one resident reach the process at once, behind another resident's
    question: each waits for the one before (they are never in one batch), so the steps of
    adding a date follow each other."""
    handle = kigen.conversation.handle
    steps = [
        Incoming.from_text("line", "U-quick", "/remind"),
        Incoming("line", "U-quick", choice="kind:residence_card"),
        Incoming("line", "U-quick", choice="consent:yes"),
        Incoming.from_text("line", "U-quick", "2027-03-15"),
    ]
    _, *replies = await asyncio.gather(
        handle(question("U-other", 0)), *(handle(step) for step in steps)
    )
    assert [answer[0].intent for answer in replies] == [
        "reminder:kind",
        "consent:ask",
        "reminder:ask_date",
        "reminder:confirm",
    ]


async def test_two_replicas_batches_of_the_same_residents_do_not_deadlock(
    kigen, settings, clock, caplog
):
    """Two replicas each take the same two residents into a batch, in opposite orders, and
    both wait for a third transaction holding their locks: the locks are taken in one
    order, so neither batch fails (a deadlock would fail one after a second)."""
    if not kigen.db.url.startswith("postgresql"):
        pytest.skip("SQLite runs one writing transaction at a time: no locks to order")
    from core.store.turn_lock import TurnKey, begin

    other = await build(settings, clock)
    try:
        for round_ in range(3):
            first, second = f"U-a{round_}", f"U-b{round_}"
            async with kigen.db.session() as holder:
                await begin(
                    holder,
                    [TurnKey("line", first, None), TurnKey("line", second, None)],
                    clock.now(),
                    lock_wait=5.0,
                )
                batches = asyncio.gather(
                    asyncio.gather(
                        kigen.conversation.handle(question(first, 0)),
                        kigen.conversation.handle(question(second, 1)),
                    ),
                    asyncio.gather(
                        other.conversation.handle(question(second, 2)),
                        other.conversation.handle(question(first, 3)),
                    ),
                )
                await asyncio.sleep(0.3)  # both batches wait for the holder's locks
            answers = await batches
            assert all(replies for pair in answers for replies in pair)
    finally:
        await other.close()
    assert "each runs alone" not in caplog.text


async def test_a_lock_held_elsewhere_holds_up_only_its_resident(kigen, clock):
    """Another transaction holds one resident's lock (a replica stuck in a turn): the batch
    with that resident, here a batch of one that the others queue behind, gives up within
    half a second, the others' turns run at once, and the held resident's turn runs once
    the lock is free."""
    if not kigen.db.url.startswith("postgresql"):
        pytest.skip("SQLite runs one writing transaction at a time: no resident locks")
    from core.store.turn_lock import TurnKey, begin

    handle = kigen.conversation.handle
    async with kigen.db.session() as holder:
        await begin(holder, [TurnKey("line", "U-held", None)], clock.now(), lock_wait=5.0)
        held = asyncio.create_task(handle(question("U-held", 0), event_id="event-held"))
        await asyncio.sleep(0.1)  # its batch waits for the lock
        others = [
            asyncio.create_task(handle(question(f"U{n}", n), event_id=f"event-{n}"))
            for n in range(3)
        ]
        answered = await asyncio.wait_for(asyncio.gather(*others), timeout=3)
        assert all(replies[0].intent.startswith("faq:") for replies in answered[:2])
        assert not held.done()
    assert (await asyncio.wait_for(held, timeout=5))[0].intent.startswith("faq:")
