"""Telegram end to end: the real python-telegram-bot over real HTTP to the fake Bot API,
in webhook and in polling mode, and the outbox sender under Telegram's limits."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from telegram import Bot

from bot.serve import KigenServer
from bot.telegram import TelegramSender
from core.clock import FixedClock
from core.config import Settings
from core.messages import Document, Event, Incoming, Reply
from core.outbox import Delivery, Outcome
from core.store import users
from core.store.models import User
from tests.conftest import JST
from tests.fakes.telegram import FakeTelegram, post_update, spec_available
from tests.helpers import dump_tables, reply_rows

pytestmark = pytest.mark.skipif(
    not spec_available(), reason="../shared/specs/telegram/api.json not found"
)

SECRET = "kigen-webhook-secret_1"
CHAT = 4242


@pytest.fixture(scope="module")
def fake():
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def telegram(fake):
    fake.reset()
    yield fake
    fake.assert_no_violations()


@pytest.fixture
def tg_settings(database_url, telegram) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        telegram_token=telegram.token,
        telegram_api_url=telegram.base_url,
        telegram_webhook_secret=SECRET,
        delivery_interval_seconds=3600,
    )


@pytest_asyncio.fixture
async def server(tg_settings):
    app = KigenServer(tg_settings, port=0, clock=FixedClock(datetime(2026, 11, 25, 10, tzinfo=JST)))
    await app.start()
    yield app
    await app.stop()


class Resident:
    """A Telegram user talking to Kigen's webhook through the fake."""

    def __init__(self, fake: FakeTelegram, server: KigenServer, chat_id: int = CHAT) -> None:
        self.fake, self.server, self.chat_id = fake, server, chat_id

    async def post(self, update: dict, secret: str | None = SECRET):
        return await post_update(f"{self.server.url}/telegram/webhook", update, secret_token=secret)

    async def say(self, text: str) -> list[dict]:
        before = len(self.fake.sent_messages(self.chat_id))
        if text.startswith("/"):
            command, _, args = text[1:].partition(" ")
            update = self.fake.make_command_update(self.chat_id, command, args)
        else:
            update = self.fake.make_message_update(self.chat_id, text)
        assert (await self.post(update)).status_code == 200
        return self.fake.sent_messages(self.chat_id)[before:]

    async def press(self, data: str) -> list[dict]:
        message = next(
            m for m in reversed(self.fake.sent_messages(self.chat_id)) if data in buttons(m)
        )
        before = len(self.fake.sent_messages(self.chat_id))
        update = self.fake.make_callback_update(self.chat_id, data, message["message_id"])
        assert (await self.post(update)).status_code == 200
        return self.fake.sent_messages(self.chat_id)[before:]


def buttons(message: dict) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def test_a_whole_journey_through_the_webhook(telegram, server):
    resident = Resident(telegram, server)
    (greeting,) = await resident.say("/start")
    assert "lang:en" in buttons(greeting)
    chosen = await resident.press("lang:en")
    assert chosen[0]["text"] == "I will write to you in English."
    assert len(telegram.calls("answerCallbackQuery")) == 1
    folded = telegram.calls("editMessageText")[0].params
    assert folded["text"].endswith("» English") and "reply_markup" not in folded

    (answer,) = await resident.say("Do I have to carry my residence card all the time?")
    assert "16" in answer["text"] and "Source: https://" in answer["text"]

    await resident.say("/remind")
    await resident.press("kind:residence_card")
    await resident.press("consent:yes")
    assert telegram.calls("sendMessage")[-1].params["reply_markup"]["force_reply"] is True
    (confirm,) = await resident.say("15.03.2027")
    assert "March 15, 2027" in confirm["text"]
    saved = await resident.press("confirm:yes")
    assert saved[0]["text"].startswith("Saved:")
    (listing,) = await resident.say("/list")
    assert "March 15, 2027" in listing["text"]
    renew = next(b for b in buttons(listing) if b.startswith("renew:"))
    await resident.press(renew)
    (renewed,) = await resident.say("2028-03-15")
    assert "March 15, 2028" in renewed["text"]

    await resident.say("/mydata")
    (document,) = telegram.calls("sendDocument")
    _filename, content, _type = document.files["document"]
    exported = json.loads(content)
    assert exported["expiries"][0]["expires_on"] == "2028-03-15"

    await resident.say("/forget")
    (gone,) = await resident.press("forget:yes")
    assert gone["text"].startswith("Done")
    await server.kigen.conversation.tally.flush(server.kigen.db)
    tables = await dump_tables(server.kigen.db)
    # Left: ids of handled updates, and how often questions were asked (no user in them).
    assert {name for name, rows in tables.items() if rows} == {"processed_events", "question_stats"}
    assert str(CHAT) not in repr(tables["question_stats"])


async def test_answers_telegram_does_not_take_are_sent_once_it_is_back(telegram, server):
    resident = Resident(telegram, server)
    await resident.say("/start")
    # Down for the press: its spinner, the folding of the keyboard and the answer all fail.
    telegram.fail_next("answerCallbackQuery", 500)
    telegram.fail_next("editMessageText", 502)
    telegram.fail_next("sendMessage", 500)
    assert await resident.press("lang:en") == []
    (row,) = await reply_rows(server.kigen.db)
    assert row.status == "pending" and row.body[0]["text"] == "I will write to you in English."
    async with server.kigen.db.session() as session:
        user = await users.get_user(session, "telegram", str(CHAT))
    assert user.language == "en"  # the press itself was handled

    telegram.fail_next("sendDocument", 500)  # the export's text goes out, its file does not
    (export_text,) = await resident.say("/mydata")
    assert telegram.calls("sendDocument")[-1].status == 500

    await server.delivery.run_once()
    texts = telegram.sent_texts(CHAT)
    assert texts.count("I will write to you in English.") == 1
    assert texts.count(export_text["text"]) == 1
    (document,) = [call for call in telegram.calls("sendDocument") if call.status == 200]
    _filename, content, _type = document.files["document"]
    assert json.loads(content)["language"] == "en"
    rows = await reply_rows(server.kigen.db)
    assert [(row.status, row.body) for row in rows] == [("sent", None), ("sent", None)]


async def test_an_answer_met_by_a_flood_wait_is_queued_after_it(telegram, server):
    resident = Resident(telegram, server)
    await resident.say("/start")
    telegram.fail_next("sendMessage", 429, retry_after=30)
    assert await resident.press("lang:en") == []
    (row,) = await reply_rows(server.kigen.db)
    assert row.due_at == server.clock.now() + timedelta(seconds=30)


async def test_a_queued_answer_cut_by_a_failure_is_resumed_where_it_stopped(telegram, kigen, clock):
    await kigen.conversation.handle(Incoming("telegram", str(CHAT), event=Event.FOLLOW))
    export = Document("data.json", "application/json", b"{}")
    replies = [
        Reply(text="one", intent="test", language="en"),
        Reply(text="two", intent="test", language="en", document=export),
        Reply(text="three", intent="test", language="en"),
    ]
    await kigen.conversation.deliver_later("telegram", str(CHAT), replies)
    telegram.fail_next("sendDocument", 500)
    async with Bot(telegram.token, base_url=telegram.base_url) as bot:
        sender = TelegramSender(bot, Settings(_env_file=None))
        delivery = Delivery(kigen.db, {"telegram": sender}, kigen.notices, clock)
        await delivery.run_once()
        clock.move_to(clock.now() + timedelta(minutes=1))
        await delivery.run_once()
    assert telegram.sent_texts(CHAT) == ["one", "two", "three"]
    assert [call.status for call in telegram.calls("sendDocument")] == [500, 200]


async def test_the_command_menu_is_published_per_language(telegram, server):
    menus = telegram.calls("setMyCommands")
    assert menus[0].params.get("language_code") is None
    commands = [c["command"] for c in menus[0].params["commands"]]
    assert {"remind", "list", "language", "updates", "mydata", "forget"} <= set(commands)


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
async def test_a_webhook_without_the_secret_is_refused_and_changes_nothing(
    telegram, server, secret
):
    resident = Resident(telegram, server)
    response = await resident.post(telegram.make_command_update(CHAT, "start"), secret=secret)
    assert response.status_code == 403
    assert telegram.sent_texts() == []
    async with server.kigen.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_malformed_webhook_bodies_get_400(telegram, server):
    import httpx

    async with httpx.AsyncClient() as client:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        url = f"{server.url}/telegram/webhook"
        assert (await client.post(url, content=b"{not json", headers=headers)).status_code == 400
        assert (await client.post(url, json=[1, 2], headers=headers)).status_code == 400
        big = b"x" * (1024 * 1024 + 1)
        assert (await client.post(url, content=big, headers=headers)).status_code == 413


async def test_a_redelivered_update_is_processed_once(telegram, server):
    resident = Resident(telegram, server)
    update = telegram.make_message_update(CHAT, "How long is the special period?")
    await resident.post(update)
    await resident.post(update)
    assert len(telegram.sent_texts(CHAT)) == 1


async def test_blocking_marks_the_resident_inactive_and_unblocking_welcomes_back(telegram, server):
    resident = Resident(telegram, server)
    await resident.say("/start")
    await resident.press("lang:en")
    await resident.post(telegram.make_my_chat_member_update(CHAT, "kicked"))
    async with server.kigen.db.session() as session:
        assert (await users.get_user(session, "telegram", str(CHAT))).active is False
    before = len(telegram.sent_texts(CHAT))
    await resident.post(telegram.make_my_chat_member_update(CHAT, "member"))
    assert telegram.sent_texts(CHAT)[before].startswith("Welcome back")


async def test_a_sticker_gets_a_polite_answer(telegram, server):
    resident = Resident(telegram, server)
    update = telegram.make_message_update(CHAT, "x")
    message = update["message"]
    del message["text"]
    message["sticker"] = {
        "file_id": "s1",
        "file_unique_id": "u1",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    await resident.post(update)
    assert "only read text" in telegram.sent_texts(CHAT)[0]


async def test_a_whole_journey_by_long_polling(telegram, tg_settings):
    app = KigenServer(tg_settings, port=0, telegram_polling=True)
    await app.start()

    async def send(update: dict) -> list[dict]:
        before = len(telegram.sent_messages(CHAT))
        telegram.push_update(update)
        await telegram.wait_for_calls("sendMessage", before + 1, timeout=10)
        while True:  # a reply may come in more than one message: wait until they stop
            count = len(telegram.sent_messages(CHAT))
            await asyncio.sleep(0.4)
            if len(telegram.sent_messages(CHAT)) == count:
                return telegram.sent_messages(CHAT)[before:]

    async def press(data: str) -> list[dict]:
        message = next(m for m in reversed(telegram.sent_messages(CHAT)) if data in buttons(m))
        return await send(telegram.make_callback_update(CHAT, data, message["message_id"]))

    try:
        (greeting,) = await send(telegram.make_command_update(CHAT, "start", language_code="ja"))
        assert telegram.calls("deleteWebhook")
        assert "lang:en" in buttons(greeting)
        assert (await press("lang:en"))[0]["text"] == "I will write to you in English."
        (answer,) = await send(
            telegram.make_message_update(CHAT, "Do I have to carry my residence card?")
        )
        assert "16" in answer["text"]
        await send(telegram.make_command_update(CHAT, "remind"))
        await press("kind:my_number_card")
        await press("consent:yes")
        (confirm,) = await send(telegram.make_message_update(CHAT, "2027-06-30"))
        assert "June 30, 2027" in confirm["text"]
        assert (await press("confirm:yes"))[0]["text"].startswith("Saved:")
        (listing,) = await send(telegram.make_command_update(CHAT, "list"))
        await press(next(b for b in buttons(listing) if b.startswith("renew:")))
        (renewed,) = await send(telegram.make_message_update(CHAT, "2030-06-30"))
        assert "June 30, 2030" in renewed["text"]
        await send(telegram.make_command_update(CHAT, "forget"))
        assert (await press("forget:yes"))[0]["text"].startswith("Done")
    finally:
        await app.stop()


@pytest.mark.parametrize("timedelta_periods", ["true", None], ids=["PTB_TIMEDELTA", "int"])
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # the int
async def test_a_flood_wait_pauses_the_sender_whatever_form_ptb_gives_it(
    telegram, monkeypatch, timedelta_periods
):
    """python-telegram-bot gives retry_after as a timedelta with PTB_TIMEDELTA set and as
    an int otherwise (as in `kigen serve`, unless the deployment sets it)."""
    if timedelta_periods is None:
        monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    else:
        monkeypatch.setenv("PTB_TIMEDELTA", timedelta_periods)
    telegram.fail_next("sendMessage", 429, retry_after=3)
    reply = Reply(text="Fees change.", intent="broadcast", language="en")
    async with Bot(telegram.token, base_url=telegram.base_url) as bot:
        sender = TelegramSender(bot, Settings(_env_file=None))
        result = await sender.send([str(CHAT)], [reply], key="outbox:1")
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 3.0)


async def test_a_broadcast_to_1000_chats_goes_out_once_each_under_the_cap(telegram, kigen, clock):
    """1,000 chats, an injected 429 and 3 blocked chats. The configured cap is 200/s here
    (25/s by default) so that the test takes seconds; the fake refuses anything above 210/s."""
    from core import broadcast
    from core.store.broadcasts import progress
    from tests.test_broadcast import residents

    await residents(kigen, [(str(n), "telegram", "en", True, None) for n in range(1, 1001)])
    broadcast_id = await broadcast.create(
        kigen.db, clock.now(), "ed", title="Fees", texts={"en": "Fees change."}
    )
    await broadcast.approve(kigen.db, clock.now(), broadcast_id, "boss", "admin", two_person=True)
    await broadcast.start(kigen.db, clock.now(), broadcast_id, "boss")
    for blocked in (7, 77, 777):
        telegram.block_chat(blocked)
    telegram.fail_next("sendMessage", 429, retry_after=1)
    telegram.rate_limit(per_second=210, per_chat_per_second=1)
    settings = Settings(_env_file=None, telegram_rate=200)
    async with Bot(telegram.token, base_url=telegram.base_url) as bot:
        delivery = Delivery(
            kigen.db,
            {"telegram": TelegramSender(bot, settings)},
            kigen.notices,
            clock,
            batch_size=200,
        )
        for _ in range(30):
            await broadcast.materialise(kigen.db, clock.now())
            if not await delivery.run_once():
                clock.move_to(clock.now() + timedelta(seconds=30))
                await broadcast.materialise(kigen.db, clock.now())
                if not await delivery.run_once():
                    break
    delivered = [r.chat_id for r in telegram.calls("sendMessage") if r.ok]
    assert len(delivered) == len(set(delivered)) == 997
    assert telegram.max_rate_observed() <= 210
    async with kigen.db.session() as session:
        inactive = (
            await session.execute(select(User.platform_id).where(User.active.is_(False)))
        ).scalars()
        counts = await progress(session, broadcast_id)
    assert sorted(inactive) == ["7", "77", "777"]
    assert counts == {"queued": 0, "sent": 997, "failed": 0, "blocked": 3, "dropped": 0}
