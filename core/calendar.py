"""An iCalendar file per saved expiry, with alarms on the days of Kigen's reminders, so
the reminder survives even without Kigen."""

from __future__ import annotations

from datetime import datetime, timedelta

from core import schedule
from core.flows.documents import document_name
from core.i18n import Translator
from core.notices import WHAT_TO_DO
from core.store.models import Expiry

ALARM_HOUR = 9


def expiry_calendar(expiry: Expiry, t: Translator, *, now: datetime) -> bytes:
    """The .ics of one expiry: an all-day event on the expiry date, with an alarm at 09:00
    on each reminder day before it."""
    from icalendar import Alarm, Calendar, Event  # imported when a file is asked for

    kind = schedule.DocumentKind(expiry.kind)
    calendar = Calendar()
    calendar.add("prodid", "-//Kigen//kigen//EN")
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", f"kigen-expiry-{expiry.id}-{expiry.expires_on:%Y%m%d}@kigen")
    event.add("dtstamp", now)
    event.add("dtstart", expiry.expires_on)
    event.add("dtend", expiry.expires_on + timedelta(days=1))
    name = document_name(t, kind)
    event.add("summary", t.gettext("{document} expires").format(document=name))
    event.add("description", t.gettext(WHAT_TO_DO[kind]))
    for day in schedule.reminder_dates(kind, expiry.expires_on):
        days_before = (expiry.expires_on - day).days
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", event["summary"])
        alarm.add("trigger", -timedelta(days=days_before) + timedelta(hours=ALARM_HOUR))
        event.add_component(alarm)
    calendar.add_component(event)
    return calendar.to_ical()
