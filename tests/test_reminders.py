"""The reminder ladder over time: a year day by day, renewed, snoozed, applied, deleted,
forgotten; the resident's hour and time zone; the calendar file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest_asyncio
import time_machine
from sqlalchemy import select

from core import links, schedule
from core.app import build
from core.clock import SystemClock
from core.outbox import Delivery
from core.store.models import OutboxMessage
from tests.conftest import JST
from tests.helpers import Chat, choice_ids
from tests.test_delivery import RecordingSender


async def save(chat: Chat, kind: str, expires: str) -> None:
    await chat.say("/remind")
    await chat.press(f"kind:{kind}")
    if "consent:yes" in choice_ids(chat.last):
        await chat.press("consent:yes")
    await chat.say(expires)
    await chat.press("confirm:yes")


def received(sender: RecordingSender) -> list[tuple[str, str]]:
    return [(replies[0].intent, replies[0].text) for _, _, replies in sender.sent]


@pytest_asyncio.fixture
async def real_time_kigen(settings):
    """Kigen on the system clock, which time-machine moves."""
    with time_machine.travel(datetime(2026, 11, 25, 10, tzinfo=JST), tick=False) as traveller:
        app = await build(settings, SystemClock())
        yield app, traveller
        await app.close()


async def test_a_year_of_a_ladder_day_by_day(real_time_kigen):
    kigen, traveller = real_time_kigen
    chat = Chat(kigen.conversation)
    await save(chat, "residence_card", "2027-11-24")
    sender = RecordingSender()
    delivery = Delivery(kigen.db, {"test": sender}, kigen.notices, kigen.clock)
    log = []
    day = date(2026, 11, 26)
    while day <= date(2027, 12, 5):
        for hour in (8, 9, 21):
            traveller.move_to(datetime(day.year, day.month, day.day, hour, 0, 1, tzinfo=JST))
            before = len(sender.sent)
            await delivery.run_once()
            log += [(day, hour, r[0].intent) for _, _, r in sender.sent[before:]]
        day += timedelta(days=1)
    assert log == [
        (date(2027, 8, 24), 9, "reminder:window"),
        (date(2027, 10, 24), 9, "reminder:month"),
        (date(2027, 11, 10), 9, "reminder:two_weeks"),
        (date(2027, 11, 17), 9, "reminder:week"),
        (date(2027, 11, 23), 9, "reminder:day"),
        (date(2027, 11, 25), 9, "reminder:after"),
    ]
    texts = [text for _intent, text in received(sender)]
    assert "Specified Residence Card" in texts[0]
    assert all("Specified Residence Card" not in text for text in texts[1:])
    assert "1 day left" in texts[4]


async def deliver_on(kigen, sender, moment: datetime) -> list[str]:
    kigen.clock.move_to(moment)
    before = len(sender.sent)
    await Delivery(kigen.db, {"test": sender}, kigen.notices, kigen.clock).run_once()
    return [replies[0].intent for _, _, replies in sender.sent[before:]]


async def test_renewing_replaces_the_ladder(kigen, chat):
    await save(chat, "residence_card", "2027-03-15")
    sender = RecordingSender()
    assert await deliver_on(kigen, sender, datetime(2026, 12, 15, 9, tzinfo=JST)) == [
        "reminder:window"
    ]
    (renew,) = [c.id for c in sender.sent[0][2][0].choices if c.id.startswith("renew:")]
    await chat.press_unoffered(renew)
    await chat.say("2030-03-15")
    assert await deliver_on(kigen, sender, datetime(2027, 2, 15, 9, tzinfo=JST)) == []
    assert await deliver_on(kigen, sender, datetime(2029, 12, 15, 9, tzinfo=JST)) == [
        "reminder:window"
    ]


async def test_snoozing_brings_the_reminder_back_a_week_later(kigen, chat):
    await save(chat, "my_number_card", "2027-03-15")
    sender = RecordingSender()
    await deliver_on(kigen, sender, datetime(2026, 12, 15, 9, tzinfo=JST))
    snooze = next(c.id for c in sender.sent[0][2][0].choices if c.id.startswith("snooze:"))
    replies = await chat.press_unoffered(snooze)
    assert replies[0].intent == "reminder:snoozed" and "December 22, 2026" in replies[0].text
    assert await deliver_on(kigen, sender, datetime(2026, 12, 22, 8, 59, tzinfo=JST)) == []
    assert await deliver_on(kigen, sender, datetime(2026, 12, 22, 9, tzinfo=JST)) == [
        "reminder:snooze"
    ]


async def test_applied_pauses_the_ladder_and_plans_the_my_number_reminder(kigen, chat):
    await save(chat, "residence_card", "2027-03-15")
    sender = RecordingSender()
    await deliver_on(kigen, sender, datetime(2026, 12, 15, 9, tzinfo=JST))
    applied = next(c.id for c in sender.sent[0][2][0].choices if c.id.startswith("applied:"))
    (reply,) = await chat.press_unoffered(applied)
    assert reply.intent == "reminder:applied"
    assert "May 15, 2027" in reply.text and "2 months" in reply.text
    assert "March 8, 2027" in reply.text
    assert await deliver_on(kigen, sender, datetime(2027, 2, 15, 9, tzinfo=JST)) == []
    assert await deliver_on(kigen, sender, datetime(2027, 3, 8, 9, tzinfo=JST)) == [
        "reminder:mnc_extend"
    ]
    assert "My Number Card" in sender.sent[-1][2][0].text
    assert await deliver_on(kigen, sender, datetime(2027, 3, 16, 9, tzinfo=JST)) == []
    listing = await chat.say("/list")
    assert "application pending" in listing[0].text


async def test_stop_deleting_and_forgetting_end_the_reminders(kigen):
    sender = RecordingSender()
    for user, ending in (("stopper", "stop"), ("deleter", "del"), ("forgetter", "forget")):
        chat = Chat(kigen.conversation, user=user)
        await save(chat, "e_certificate", "2027-03-15")
        listing = await chat.say("/list")
        expiry_id = next(c.id.split(":")[1] for c in listing[0].choices if c.id.startswith("del:"))
        if ending == "forget":
            await chat.say("/forget")
            await chat.press("forget:yes")
        else:
            await chat.press_unoffered(f"{ending}:{expiry_id}")
    moments = [datetime(2026, 12, 15, 9, tzinfo=JST), datetime(2027, 3, 14, 9, tzinfo=JST)]
    for moment in moments:
        assert await deliver_on(kigen, sender, moment) == []


async def test_the_resident_chooses_the_hour_but_never_at_night(kigen, chat):
    await save(chat, "residence_card", "2027-03-15")
    asked = await chat.say("/time")
    hours = [c.id for c in asked[0].choices]
    assert hours[0] == "hour:7" and hours[-1] == "hour:21"
    assert (await chat.press_unoffered("hour:3"))[0].intent == "settings:hour"
    assert (await chat.press("hour:21"))[0].intent == "settings:hour_set"
    sender = RecordingSender()
    assert await deliver_on(kigen, sender, datetime(2026, 12, 15, 20, 59, tzinfo=JST)) == []
    assert await deliver_on(kigen, sender, datetime(2026, 12, 15, 21, tzinfo=JST)) == [
        "reminder:window"
    ]


async def test_a_resident_abroad_gets_reminders_at_their_local_hour(kigen, chat):
    await save(chat, "residence_card", "2027-07-15")
    asked = await chat.say("/timezone")
    assert "tz:Asia/Ho_Chi_Minh" in choice_ids(asked)
    replies = await chat.say("europe/london")
    assert replies[0].intent == "settings:timezone_set"
    async with kigen.db.session() as session:
        rows = (
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.due_at)))
            .scalars()
            .all()
        )
    london = ZoneInfo("Europe/London")
    assert rows[0].due_at.astimezone(london) == datetime(2027, 4, 15, 9, tzinfo=london)
    assert rows[0].due_at == datetime(2027, 4, 15, 8, tzinfo=UTC)  # British Summer Time
    assert (await chat.say("/timezone"))[0].intent == "settings:timezone"
    assert (await chat.say("Mars/Olympus_Mons"))[0].intent == "error:timezone"


def test_tokyo_has_no_daylight_saving_time():
    for month in range(1, 13):
        moment = schedule.due_at(date(2027, month, 15), hour=9)
        assert moment.astimezone(UTC).hour == 0


async def test_the_calendar_file_has_an_alarm_on_each_reminder_day(kigen, chat, settings):
    await save(chat, "residence_card", "2027-03-15")
    listing = await chat.say("/list")
    (reply,) = await chat.press(next(c for c in choice_ids(listing) if c.startswith("cal:")))
    assert reply.document.media_type == "text/calendar" and reply.document.url is None
    (event,) = icalendar.Calendar.from_ical(reply.document.content).walk("VEVENT")
    assert event.decoded("dtstart") == date(2027, 3, 15)
    triggers = sorted(alarm.decoded("trigger") for alarm in event.walk("VALARM"))
    expected = [
        date(2027, 3, 15) - day
        for day in schedule.reminder_dates(schedule.DocumentKind.RESIDENCE_CARD, date(2027, 3, 15))
    ]
    assert triggers == sorted(timedelta(hours=9) - gap for gap in expected)


def test_signed_links_expire_and_refuse_tampering():
    key, now = b"k" * 32, datetime(2026, 11, 25, tzinfo=UTC)
    token = links.sign(key, "e12", now=now)
    assert links.verify(key, token, now=now) == "e12"
    assert links.verify(key, token, now=now + timedelta(days=8)) is None
    assert links.verify(b"x" * 32, token, now=now) is None
    assert links.verify(key, token.replace("e12", "e13"), now=now) is None
    assert links.verify(key, "../../etc/passwd", now=now) is None


async def test_stopped_reminders_stay_stopped_after_the_daily_planning(kigen, chat):
    from core.reminders import plan_missing

    await save(chat, "residence_card", "2027-03-15")
    listing = await chat.say("/list")
    expiry_id = next(c.id.split(":")[1] for c in listing[0].choices if c.id.startswith("del:"))
    await chat.press_unoffered(f"stop:{expiry_id}")
    assert await plan_missing(kigen.db, kigen.clock.now()) == 0
    sender = RecordingSender()
    assert await deliver_on(kigen, sender, datetime(2026, 12, 15, 9, tzinfo=JST)) == []
    assert "no reminders" in (await chat.say("/list"))[0].text
