"""Turns of several residents in one transaction (Conversation with core.batching)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select

from core.flows import faq
from core.messages import Event, Incoming
from core.store.models import DialogueState, ProcessedEvent, User

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
        *(handle(question(f"U{n}", n), event_id=f"event-{n}") for n in range(6)),
        handle(boom, event_id="event-boom"),
        return_exceptions=True,
    )
    assert isinstance(results[-1], RuntimeError)
    assert all(replies[0].language for replies in results[:-1])
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
