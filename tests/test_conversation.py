"""Flow tests of the conversation core, driven through Conversation.handle."""

from __future__ import annotations

import asyncio
import json
from datetime import date

from sqlalchemy import func, select

from core.app import build
from core.conversation import MAX_TEXT_LENGTH
from core.messages import Incoming
from core.store.models import DialogueState, Expiry, OutboxMessage, User
from tests.conftest import JST
from tests.helpers import Chat, choice_ids, dump_tables, intents


async def count(kigen, model) -> int:
    async with kigen.db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def add_date(chat: Chat, kind: str = "residence_card", typed: str = "2027-03-15"):
    await chat.say("/remind")
    await chat.press(f"kind:{kind}")
    if "consent:yes" in choice_ids(chat.last):
        await chat.press("consent:yes")
    await chat.say(typed)
    return await chat.press("confirm:yes")


async def test_follow_greets_and_offers_languages(chat):
    replies = await chat.follow()
    assert intents(replies) == ["onboarding:language"]
    assert "lang:en" in choice_ids(replies)


async def test_choosing_a_language_sets_it_and_shows_help(chat, kigen):
    await chat.follow()
    replies = await chat.press("lang:en")
    assert intents(replies) == ["language:set", "help"]
    async with kigen.db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
    assert (user.language, user.language_chosen) == ("en", True)


async def test_a_new_residents_question_is_answered_at_once(chat, kigen):
    replies = await chat.say("How many days do I have to report my new address after moving?")
    assert replies[0].intent == "faq:move_report"
    assert "14" in replies[0].text
    assert "Source: https://" in replies[0].text
    assert await count(kigen, Expiry) == 0


async def test_consent_refused_stores_nothing(chat, kigen):
    await chat.say("/remind")
    await chat.press("kind:my_number_card")
    replies = await chat.press("consent:no")
    assert intents(replies) == ["consent:refused"]
    assert await count(kigen, Expiry) == 0
    assert await count(kigen, OutboxMessage) == 0
    async with kigen.db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
    assert user.consent_at is None


async def test_add_a_date_plans_reminders_from_the_window(chat, kigen):
    replies = await add_date(chat, typed="15/03/2027")
    assert intents(replies) == ["reminder:saved", "updates:ask"]
    assert "March 15, 2027" in replies[0].text
    async with kigen.db.session() as session:
        rows = (
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.due_at)))
            .scalars()
            .all()
        )
    assert [row.step for row in rows] == ["window", "month", "two_weeks", "week", "day", "after"]
    first = rows[0].due_at.astimezone(JST)
    assert (first.date(), first.hour) == (date(2026, 12, 15), 9)


async def test_consent_is_asked_only_once(chat):
    await add_date(chat)
    await chat.say("/remind")
    replies = await chat.press("kind:e_certificate")
    assert intents(replies) == ["reminder:ask_date"]


async def test_list_renew_and_delete(chat, kigen):
    await add_date(chat)
    listing = await chat.say("/list")
    assert intents(listing) == ["reminder:list"]
    assert "March 15, 2027" in listing[0].text
    (renew,) = [c for c in choice_ids(listing) if c.startswith("renew:")]
    asked = await chat.press(renew)
    assert asked[0].date_request
    renewed = await chat.pick(date(2030, 3, 15))
    assert intents(renewed) == ["reminder:renewed"]
    async with kigen.db.session() as session:
        expiry = (await session.execute(select(Expiry))).scalar_one()
        pending = (await session.execute(select(OutboxMessage))).scalars().all()
    assert expiry.expires_on == date(2030, 3, 15)
    assert min(row.due_at for row in pending).year == 2029
    listing = await chat.say("/list")
    (delete,) = [c for c in choice_ids(listing) if c.startswith("del:")]
    assert intents(await chat.press(delete)) == ["reminder:deleted"]
    assert await count(kigen, Expiry) == 0
    assert await count(kigen, OutboxMessage) == 0


async def test_a_bad_date_is_explained_and_the_question_stays_open(chat, kigen):
    await chat.say("/remind")
    await chat.press("kind:residence_card")
    await chat.press("consent:yes")
    for typed in ("2020-01-01", "2027-02-30", "next year sometime", "2045-01-01"):
        replies = await chat.say(typed)
        assert intents(replies) == ["error:date"], typed
        assert replies[0].date_request
    assert "past" in (await chat.say("2020-01-01"))[0].text
    ambiguous = await chat.say("03/04/2027")
    assert intents(ambiguous) == ["date:ambiguous"]
    confirm = await chat.press("date:2027-04-03")
    assert intents(confirm) == ["reminder:confirm"]
    assert await count(kigen, Expiry) == 0


async def test_someone_elses_expiry_cannot_be_touched(kigen, chat):
    await add_date(chat)
    async with kigen.db.session() as session:
        expiry_id = (await session.execute(select(Expiry.id))).scalar_one()
    intruder = Chat(kigen.conversation, user="u2")
    replies = await intruder.press_unoffered(f"del:{expiry_id}")
    assert intents(replies) == ["error:choice"]
    assert await count(kigen, Expiry) == 1


async def test_export_lists_everything_stored(chat):
    await add_date(chat)
    await chat.press("updates:on")
    (reply,) = await chat.say("/mydata")
    assert reply.intent == "privacy:export"
    data = json.loads(reply.document.content)
    assert data["user_id"] == "u1"
    assert data["policy_updates"] is True
    assert data["expiries"][0]["document"] == "residence_card"
    assert data["expiries"][0]["expires_on"] == "2027-03-15"
    assert len(data["expiries"][0]["reminders_due"]) == 6


async def test_forget_leaves_nothing_in_any_table(chat, kigen):
    await add_date(chat)
    await chat.say("/forget")
    assert intents(chat.last) == ["privacy:confirm"]
    replies = await chat.press("forget:yes")
    assert intents(replies) == ["privacy:forgotten"]
    tables = await dump_tables(kigen.db)
    assert {name: rows for name, rows in tables.items() if rows} == {}  # no question was asked


async def test_forget_can_be_called_off(chat, kigen):
    await add_date(chat)
    await chat.say("/forget")
    assert intents(await chat.press("forget:no")) == ["cancelled"]
    assert await count(kigen, Expiry) == 1


async def test_my_number_is_never_stored_and_is_warned_about(chat, kigen, caplog):
    caplog.set_level("DEBUG")
    await chat.say("/remind")
    replies = await chat.say("my number is 4821 7390 5569, when does my card expire?")
    assert replies[0].intent == "privacy:warning"
    await chat.say("ZX73915528QK")
    assert intents(chat.last) == ["privacy:warning"]
    dump = repr(await dump_tables(kigen.db))
    for secret in ("482173905569", "4821 7390 5569", "7390", "5569", "73915528", "ZX73915528QK"):
        assert secret not in dump
    for secret in ("482173905569", "4821 7390 5569", "ZX73915528QK"):
        assert secret not in caplog.text


async def test_updates_can_be_turned_on_and_off(chat, kigen):
    assert intents(await chat.say("/updates")) == ["updates:status"]
    assert intents(await chat.press("updates:on")) == ["updates:on"]
    assert intents(await chat.press("updates:off")) == ["updates:off"]
    async with kigen.db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
    assert user.updates_opt_in is False


async def test_unknown_command_gets_help(chat):
    replies = await chat.say("/frobnicate")
    assert intents(replies) == ["error:command", "help"]
    assert "/frobnicate" in replies[0].text


async def test_a_huge_message_is_refused_politely(chat, kigen):
    replies = await chat.say("x" * (4 * 1024 * 1024))
    assert intents(replies) == ["error:too_long"]
    assert str(MAX_TEXT_LENGTH) in replies[0].text


async def test_stale_buttons_are_answered(chat):
    assert intents(await chat.press_unoffered("confirm:yes")) == ["error:choice"]
    assert intents(await chat.press_unoffered("nonsense")) == ["error:choice"]
    assert intents(await chat.pick(date(2027, 1, 1))) == ["error:choice"]


async def test_unfollow_drops_pending_reminders_and_follow_comes_back(chat, kigen):
    await add_date(chat)
    assert await chat.unfollow() == []
    async with kigen.db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
        statuses = set((await session.execute(select(OutboxMessage.status))).scalars())
    assert user.active is False
    assert statuses == {"dropped"}
    await chat.follow()
    async with kigen.db.session() as session:
        user = (await session.execute(select(User))).scalar_one()
    assert user.active is True


async def test_dialogue_state_is_cleared_when_a_flow_ends(chat, kigen):
    await chat.say("/remind")
    assert await count(kigen, DialogueState) == 1
    await chat.say("/cancel")
    assert await count(kigen, DialogueState) == 0


async def test_a_flooding_resident_is_slowed_and_others_are_not(kigen):
    flooder, other = Chat(kigen.conversation, user="flood"), Chat(kigen.conversation, user="calm")
    answered = [await flooder.say("/help") for _ in range(kigen.settings.flood_limit_per_minute)]
    assert all(intents(replies) == ["help"] for replies in answered)
    assert intents(await flooder.say("/help")) == ["error:flood"]
    assert await flooder.say("/help") == []
    assert intents(await other.say("/help")) == ["help"]


async def test_messages_arriving_together_are_answered_one_by_one_in_order(kigen):
    """A resident's first messages, arriving at once (two webhook calls in flight): one
    resident is created, nothing fails, and the turns run in arrival order."""
    import asyncio

    from core.messages import Incoming

    texts = ["/remind", "/list", "Do I have to carry my residence card?", "/help"] * 3
    answers = await asyncio.gather(
        *(kigen.conversation.handle(Incoming.from_text("line", "U-at-once", t)) for t in texts)
    )
    assert not [r for replies in answers for r in replies if r.intent.startswith("error")]
    assert [replies[0].intent for replies in answers[:4]] == [
        "reminder:kind",
        "reminder:list",
        "faq:carry_card",
        "help",
    ]
    async with kigen.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1
    assert len(kigen.conversation.turns) == 0


async def test_two_replicas_meeting_a_new_resident_at_once_do_not_fail(kigen, settings, clock):
    """Two processes on one database (a second Kigen stands for a second replica) get
    the first messages of the same resident at the same moment: nobody gets an error."""
    import asyncio

    from core.app import build
    from core.messages import Incoming

    other = await build(settings, clock)
    try:
        for round_ in range(5):
            user = f"U-two-replicas-{round_}"
            answers = await asyncio.gather(
                kigen.conversation.handle(Incoming.from_text("line", user, "/remind")),
                other.conversation.handle(Incoming.from_text("line", user, "/forget")),
            )
            assert not [r for replies in answers for r in replies if r.intent.startswith("error")]
    finally:
        await other.close()
    async with kigen.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 5


async def typed_a_date_to_save(conversation) -> Incoming:
    """Resident u1 is asked to confirm a date; returns their tap on "Save"."""
    chat = Chat(conversation)
    await chat.say("/remind")
    await chat.press("kind:residence_card")
    await chat.press("consent:yes")
    await chat.say("2027-03-15")
    return Incoming("test", "u1", choice="confirm:yes")


async def test_two_replicas_never_run_two_turns_of_one_resident_at_once(kigen, settings, clock):
    """A double tap on "Save" reaches two Kigen processes on one database at once: the
    second turn waits for the first, so the date is saved once."""
    other = await build(settings, clock)
    try:
        tap = await typed_a_date_to_save(kigen.conversation)
        first, second = await asyncio.gather(
            kigen.conversation.handle(tap), other.conversation.handle(tap)
        )
    finally:
        await other.close()
    async with kigen.db.session() as session:
        saved = await session.scalar(select(func.count()).select_from(Expiry))
    assert saved == 1
    assert sorted([first[0].intent, second[0].intent]) == ["error:choice", "reminder:saved"]


async def test_two_replicas_given_platform_events_at_once_run_them_one_after_the_other(
    kigen, settings, clock
):
    """With the platform's event ids (the lock and the event's record are then one
    statement on PostgreSQL): a double tap is still saved once, and one event delivered to
    two replicas at once (a redelivery racing the first delivery) is answered once."""
    other = await build(settings, clock)
    try:
        tap = await typed_a_date_to_save(kigen.conversation)
        taps = await asyncio.gather(
            kigen.conversation.handle(tap, event_id="tap-1"),
            other.conversation.handle(tap, event_id="tap-2"),
        )
        question = Incoming.from_text("test", "u1", "When can I renew my residence card?")
        deliveries = await asyncio.gather(
            kigen.conversation.handle(question, event_id="question-1"),
            other.conversation.handle(question, event_id="question-1"),
        )
    finally:
        await other.close()
    async with kigen.db.session() as session:
        saved = await session.scalar(select(func.count()).select_from(Expiry))
    assert saved == 1
    assert sorted(replies[0].intent for replies in taps) == ["error:choice", "reminder:saved"]
    answered = [replies for replies in deliveries if replies]
    assert len(answered) == 1
    assert answered[0][0].intent.startswith("faq:")
