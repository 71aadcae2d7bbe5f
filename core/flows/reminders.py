"""Saving, listing, renewing and deleting expiry dates, and answering reminder buttons."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core import dates, links, reminders, schedule
from core.calendar import expiry_calendar
from core.flows.context import Context
from core.flows.documents import document_label, document_name
from core.i18n import N_
from core.messages import Choice, Document, Reply
from core.schedule import DocumentKind
from core.store import expiries, outbox
from core.store.models import Expiry, ExpiryStatus
from core.store.outbox import PlannedReminder

ADD = "add"
RENEW = "renew"
#: The label of a platform's date picker, where it has one.
DATE_PICKER_LABEL = N_("Choose a date")


def _example(ctx: Context) -> str:
    sample = date(ctx.today.year + 1, 3, 15)
    return f"{sample.isoformat()} / {ctx.t.format_date(sample)}"


def _date_list(ctx: Context, days: list[date]) -> str:
    return ", ".join(ctx.t.format_date(day) for day in days)


async def start_add(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    ctx.go(ADD, "kind")
    choices = [Choice(f"kind:{kind}", document_label(ctx.t, kind)) for kind in DocumentKind]
    return [ctx.reply(_("Which document should I remind you about?"), "reminder:kind", choices)]


async def choose_kind(ctx: Context, kind: str) -> list[Reply]:
    if kind not in DocumentKind.__members__.values():
        return await start_add(ctx)
    ctx.go(ADD, "consent", kind=kind)
    if ctx.user.consent_at is None:
        return [_consent_question(ctx)]
    return [_ask_date(ctx, kind, ADD)]


def _consent_question(ctx: Context) -> Reply:
    _ = ctx.t.gettext
    text = _(
        "Before I save a date: I keep only your user id on this app, your language, the "
        "document type and its expiry date. I use them only to send your reminders, and I "
        "never ask for your name, address, My Number or card number. You can delete a "
        "reminder at any time, or everything with /forget.\nDo you agree?"
    )
    choices = [Choice("consent:yes", _("I agree")), Choice("consent:no", _("No, thanks"))]
    return ctx.reply(text, "consent:ask", choices)


async def answer_consent(ctx: Context, answer: str) -> list[Reply]:
    _ = ctx.t.gettext
    if ctx.flow != ADD or "kind" not in ctx.data:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    if answer != "yes":
        ctx.end()
        text = _("All right, I have saved nothing. You can still ask me anything.")
        return [ctx.reply(text, "consent:refused")]
    ctx.user.consent_at = ctx.now
    return [_ask_date(ctx, ctx.data["kind"], ADD)]


def _ask_date(ctx: Context, kind: str, flow: str, expiry_id: int | None = None) -> Reply:
    _ = ctx.t.gettext
    ctx.go(flow, "date", kind=kind, expiry_id=expiry_id)
    if flow == RENEW:
        question = _("What is the new expiry date of your {document}?")
    else:
        question = _("When does your {document} expire?")
    hint = _("Type the date, for example {example}.").format(example=_example(ctx))
    text = f"{question.format(document=document_name(ctx.t, kind))}\n{hint}"
    return ctx.reply(text, "reminder:ask_date", date_request=True)


async def on_date_text(ctx: Context, text: str) -> list[Reply]:
    try:
        day = dates.parse_date(text, today=ctx.today)
    except dates.DateParseError as error:
        return [_date_error(ctx, error)]
    return await on_date(ctx, day)


def _date_error(ctx: Context, error: dates.DateParseError) -> Reply:
    _ = ctx.t.gettext
    if error.reason == "ambiguous":
        first, second = error.candidates
        text = _("Did you mean {first} or {second}?").format(
            first=ctx.t.format_date(first), second=ctx.t.format_date(second)
        )
        choices = [
            Choice(f"date:{day.isoformat()}", ctx.t.format_date(day)) for day in (first, second)
        ]
        return ctx.reply(text, "date:ambiguous", choices)
    explanations = {
        "past": _("That date is in the past. Please type the expiry date printed on your card."),
        "too_far": _("That date is more than 10 years away. Please check the year."),
        "invalid": _("That date does not exist. Please check the day and the month."),
    }
    default = _("I could not read that as a date.")
    hint = _("Type the date, for example {example}.").format(example=_example(ctx))
    text = f"{explanations.get(str(error.reason), default)}\n{hint}"
    return ctx.reply(text, "error:date", date_request=True)


async def on_date(ctx: Context, day: date) -> list[Reply]:
    """A date typed, picked or chosen while a date was asked for."""
    _ = ctx.t.gettext
    try:
        dates.check_range(day, today=ctx.today)
    except dates.DateParseError as error:
        return [_date_error(ctx, error)]
    kind = ctx.data["kind"]
    if ctx.flow == RENEW:
        return await _renew(ctx, ctx.data["expiry_id"], day)
    ctx.go(ADD, "confirm", kind=kind, expires_on=day.isoformat())
    probe = Expiry(user_id=ctx.user.id, kind=kind, expires_on=day, created_at=ctx.now)
    days = _reminder_days(ctx, reminders.plan(probe, ctx.user, ctx.now))
    text = _("Save: {document}, expires on {date}?").format(
        document=document_name(ctx.t, kind), date=ctx.t.format_date(day)
    )
    if days:
        text += "\n" + _("I will remind you on: {dates}.").format(dates=_date_list(ctx, days))
    choices = [Choice("confirm:yes", _("Save")), Choice("confirm:no", _("Cancel"))]
    return [ctx.reply(text, "reminder:confirm", choices)]


def _local_day(ctx: Context, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(ctx.user.timezone)).date()


def _reminder_days(ctx: Context, planned: list[PlannedReminder]) -> list[date]:
    """The days of the reminders before expiry (not the overdue nudge)."""
    return [_local_day(ctx, item.due_at) for item in planned if item.step != "after"]


async def confirm(ctx: Context, answer: str) -> list[Reply]:
    _ = ctx.t.gettext
    if ctx.flow != ADD or ctx.step != "confirm":
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    if answer != "yes":
        ctx.end()
        return [ctx.reply(_("Cancelled. Nothing was saved."), "cancelled")]
    kind, day = ctx.data["kind"], date.fromisoformat(ctx.data["expires_on"])
    expiry = await expiries.add_expiry(ctx.session, ctx.user.id, kind, day, ctx.now)
    await reminders.replan(ctx.session, ctx.user, expiry, ctx.now)
    ctx.end()
    text = _("Saved: {document}, expires on {date}.").format(
        document=document_name(ctx.t, kind), date=ctx.t.format_date(day)
    )
    days = _reminder_days(ctx, reminders.plan(expiry, ctx.user, ctx.now))
    if days:
        text += "\n" + _("I will remind you on: {dates}.").format(dates=_date_list(ctx, days))
    choices = [
        Choice(f"cal:{expiry.id}", _("Add to calendar")),
        Choice("menu:list", _("My reminders")),
    ]
    replies = [ctx.reply(text, "reminder:saved", choices)]
    if ctx.user.updates_opt_in is None:
        question = _(
            "Would you also like important policy updates, such as fee changes, from your "
            "local support desk? You can turn them off at any time with /updates."
        )
        choices = [Choice("updates:on", _("Yes, send updates")), Choice("updates:off", _("No"))]
        replies.append(ctx.reply(question, "updates:ask", choices))
    return replies


async def show_list(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    ctx.end()
    saved = await expiries.list_expiries(ctx.session, ctx.user.id)
    if not saved:
        text = _("You have no saved dates yet.")
        return [ctx.reply(text, "reminder:list", [Choice("menu:add", _("Add a reminder"))])]
    lines = [_("Your saved dates:")]
    choices: list[Choice] = []
    for number, expiry in enumerate(saved, start=1):
        line = _("{number}. {document}: expires on {date}").format(
            number=number,
            document=document_name(ctx.t, expiry.kind),
            date=ctx.t.format_date(expiry.expires_on),
        )
        pending = await outbox.pending_reminders(ctx.session, expiry.id)
        if expiry.status == ExpiryStatus.APPLIED:
            line += " — " + _("application pending, reminders paused")
        elif expiry.status == ExpiryStatus.STOPPED:
            line += " — " + _("no reminders")
        elif pending:
            line += " — " + _("next reminder {date}").format(
                date=ctx.t.format_date(_local_day(ctx, pending[0].due_at))
            )
        lines.append(line)
        choices.append(Choice(f"renew:{expiry.id}", _("{number}: renewed").format(number=number)))
        choices.append(Choice(f"del:{expiry.id}", _("{number}: delete").format(number=number)))
        choices.append(Choice(f"cal:{expiry.id}", _("{number}: calendar").format(number=number)))
    choices.append(Choice("menu:add", _("Add a reminder")))
    return [ctx.reply("\n".join(lines), "reminder:list", choices)]


async def _owned(ctx: Context, value: str) -> Expiry | None:
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        return None
    return await expiries.get_expiry(ctx.session, ctx.user.id, int(value))


async def start_renew(ctx: Context, value: str) -> list[Reply]:
    _ = ctx.t.gettext
    expiry = await _owned(ctx, value)
    if expiry is None:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    return [_ask_date(ctx, expiry.kind, RENEW, expiry.id)]


async def _renew(ctx: Context, expiry_id: int, day: date) -> list[Reply]:
    _ = ctx.t.gettext
    ctx.end()
    expiry = await expiries.get_expiry(ctx.session, ctx.user.id, expiry_id)
    if expiry is None:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    was_pending = expiry.status == ExpiryStatus.APPLIED
    expiry.expires_on, expiry.status = day, ExpiryStatus.ACTIVE
    await reminders.replan(ctx.session, ctx.user, expiry, ctx.now)
    text = _("Updated: {document}, now expires on {date}. I will remind you again in time.")
    text = text.format(document=document_name(ctx.t, expiry.kind), date=ctx.t.format_date(day))
    if was_pending and expiry.kind == DocumentKind.RESIDENCE_CARD:
        text += "\n\n" + _(
            "Next step: extend your My Number Card at your municipal office before its old "
            "expiry date. Bring the card, your new residence card and your 4-digit PIN."
        )
    return [ctx.reply(text, "reminder:renewed", [Choice("menu:list", _("My reminders"))])]


async def delete(ctx: Context, value: str) -> list[Reply]:
    _ = ctx.t.gettext
    expiry = await _owned(ctx, value)
    if expiry is None:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    name = document_name(ctx.t, expiry.kind)
    await expiries.delete_expiry(ctx.session, expiry)
    ctx.end()
    text = _("Deleted the date of your {document} and its reminders.").format(document=name)
    return [ctx.reply(text, "reminder:deleted", [Choice("menu:list", _("My reminders"))])]


async def snooze(ctx: Context, value: str) -> list[Reply]:
    """ "Remind me in a week": one more reminder 7 days from now, at the resident's hour."""
    _ = ctx.t.gettext
    expiry = await _owned(ctx, value)
    if expiry is None:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    day = ctx.today + timedelta(days=7)
    due = schedule.due_at(day, hour=ctx.user.reminder_hour, tz=ctx.user.timezone)
    snoozed = PlannedReminder(
        step=f"snooze-{day:%Y%m%d}", due_at=due, stale_at=due + reminders.LAST_STEP_SHELF_LIFE
    )
    await outbox.add_reminder(
        ctx.session,
        user_id=ctx.user.id,
        channel=ctx.user.channel,
        expiry_id=expiry.id,
        about_date=expiry.expires_on,
        planned=snoozed,
    )
    text = _("All right, I will remind you again on {date}.").format(date=ctx.t.format_date(day))
    return [ctx.reply(text, "reminder:snoozed")]


async def stop(ctx: Context, value: str) -> list[Reply]:
    """ "Stop these reminders": the date stays saved, nothing more is sent for it."""
    _ = ctx.t.gettext
    expiry = await _owned(ctx, value)
    if expiry is None:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    expiry.status = ExpiryStatus.STOPPED
    await outbox.drop_pending_reminders(ctx.session, expiry.id)
    text = _(
        "I will send no more reminders for your {document}. The date stays in /list until "
        "you delete it or enter a new one."
    ).format(document=document_name(ctx.t, expiry.kind))
    return [ctx.reply(text, "reminder:stopped", [Choice("menu:list", _("My reminders"))])]


async def applied(ctx: Context, value: str) -> list[Reply]:
    """ "I have applied": pause the ladder while the application is examined."""
    _ = ctx.t.gettext
    expiry = await _owned(ctx, value)
    if expiry is None:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    expiry.status = ExpiryStatus.APPLIED
    await reminders.replan(ctx.session, ctx.user, expiry, ctx.now)
    paused = _("Good. I have paused the reminders for your {document}.")
    lines = [paused.format(document=document_name(ctx.t, expiry.kind))]
    if expiry.kind in (DocumentKind.RESIDENCE_CARD, DocumentKind.SPECIFIED_RESIDENCE_CARD):
        lines += await _special_period(ctx, expiry)
    lines.append(_("When you have the new card, tap “Renewed: new date” or use /list."))
    return [ctx.reply("\n\n".join(lines), "reminder:applied")]


async def _special_period(ctx: Context, expiry: Expiry) -> list[str]:
    """Explain the special period and plan the one My Number Card reminder it needs."""
    _ = ctx.t.gettext
    limit = schedule.months_after(expiry.expires_on, 2)
    explanation = _(
        "If you applied before your period of stay expired, you may stay lawfully until "
        "the decision, but at most until {limit} (2 months after the expiry date): the "
        "special period. Keep the receipt, or the stamp on the back of your card; online "
        "applicants keep the acceptance e-mail."
    ).format(limit=ctx.t.format_date(limit))
    day = max(expiry.expires_on - timedelta(days=7), ctx.today + timedelta(days=1))
    due = schedule.due_at(day, hour=ctx.user.reminder_hour, tz=ctx.user.timezone)
    nudge = PlannedReminder(step="mnc_extend", due_at=due, stale_at=due + timedelta(days=60))
    await outbox.add_reminder(
        ctx.session,
        user_id=ctx.user.id,
        channel=ctx.user.channel,
        expiry_id=expiry.id,
        about_date=expiry.expires_on,
        planned=nudge,
    )
    promise = _("On {date} I will remind you to extend your My Number Card too.")
    return [explanation, promise.format(date=ctx.t.format_date(day))]


async def calendar_file(ctx: Context, value: str) -> list[Reply]:
    """ "Add to calendar": the expiry as an .ics file (and a signed link to it)."""
    _ = ctx.t.gettext
    expiry = await _owned(ctx, value)
    if expiry is None:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    content = expiry_calendar(expiry, ctx.t, now=ctx.now)
    url = None
    if ctx.settings.public_url:
        # The subject names the saved date itself, not just a row id that could be reused.
        subject = f"e{expiry.id}x{int(expiry.created_at.timestamp())}"
        token = links.sign(ctx.settings.signing_key, subject, now=ctx.now)
        url = f"{ctx.settings.public_url.rstrip('/')}/calendar/{token}.ics"
    document = Document(f"kigen-{expiry.kind}.ics", "text/calendar", content, url=url)
    text = _(
        "Here is a calendar file with the date and alarms on the reminder days. Open it to "
        "add it to your phone's calendar."
    )
    return [ctx.reply(text, "reminder:calendar", document=document)]
