"""Document kinds and the days their reminders fall due.

Each kind of document has a renewal window that opens some months before it expires (see
the fact sheet, sections 3 to 5) and an office that handles the renewal. Kigen reminds the
resident when the window opens and again, more and more often, as the expiry comes closer:
:func:`reminder_steps` gives that ladder and :func:`due_at` the moment a step is sent.
"""

import calendar
import datetime
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = [
    "DocumentKind",
    "Office",
    "Step",
    "StepName",
    "due_at",
    "months_before",
    "reminder_dates",
    "reminder_steps",
]

_EARLIEST_HOUR = 7
_LATEST_HOUR = 21


class Office(StrEnum):
    """Where a document is renewed."""

    IMMIGRATION = "immigration"
    """A regional immigration services bureau."""
    MUNICIPAL = "municipal"
    """The city, ward, town or village office of residence."""
    INSURER = "insurer"
    """The resident's health insurer (city NHI, Kyokai Kenpo, a company society)."""


class DocumentKind(StrEnum):
    """The documents whose expiry dates Kigen can keep."""

    RESIDENCE_CARD = "residence_card"
    """Residence card: the period of stay (extension from about 3 months before, E-01)."""
    RESIDENCE_CARD_PR = "residence_card_pr"
    """Residence card validity of permanent residents and HSP(ii) (2 months, E-12)."""
    SPR_CERTIFICATE = "spr_certificate"
    """Special permanent resident certificate (2 months, at the city office, E-17)."""
    SPECIFIED_RESIDENCE_CARD = "specified_residence_card"
    """Specified Residence Card (特定在留カード); it follows the period of stay for most
    holders, so 3 months."""
    MY_NUMBER_CARD = "my_number_card"
    """My Number Card (3 months, at the city office)."""
    E_CERTIFICATE = "e_certificate"
    """Electronic certificates on the My Number Card (3 months, M-12)."""
    INSURANCE_CERTIFICATE = "insurance_certificate"
    """Health insurance eligibility certificate (資格確認書). It is renewed automatically,
    so its reminders, from 1 month before, ask whether the new one has arrived."""

    @property
    def window_months(self) -> int:
        """:obj:`int`: How many months before expiry the renewal window opens."""
        return _WINDOW_MONTHS[self]

    @property
    def office(self) -> Office:
        """:class:`Office`: Where the document is renewed."""
        return _OFFICES[self]


_WINDOW_MONTHS = {
    DocumentKind.RESIDENCE_CARD: 3,
    DocumentKind.RESIDENCE_CARD_PR: 2,
    DocumentKind.SPR_CERTIFICATE: 2,
    DocumentKind.SPECIFIED_RESIDENCE_CARD: 3,
    DocumentKind.MY_NUMBER_CARD: 3,
    DocumentKind.E_CERTIFICATE: 3,
    DocumentKind.INSURANCE_CERTIFICATE: 1,
}
_OFFICES = {
    DocumentKind.RESIDENCE_CARD: Office.IMMIGRATION,
    DocumentKind.RESIDENCE_CARD_PR: Office.IMMIGRATION,
    DocumentKind.SPR_CERTIFICATE: Office.MUNICIPAL,
    DocumentKind.SPECIFIED_RESIDENCE_CARD: Office.IMMIGRATION,
    DocumentKind.MY_NUMBER_CARD: Office.MUNICIPAL,
    DocumentKind.E_CERTIFICATE: Office.MUNICIPAL,
    DocumentKind.INSURANCE_CERTIFICATE: Office.INSURER,
}


class StepName(StrEnum):
    """The rungs of the reminder ladder, earliest first."""

    WINDOW = "window"
    """The renewal window opens."""
    MONTH = "month"
    """One month before expiry."""
    TWO_WEEKS = "two_weeks"
    """14 days before expiry."""
    WEEK = "week"
    """7 days before expiry."""
    DAY = "day"
    """The day before expiry."""
    AFTER = "after"
    """The day after expiry; sent only if the resident has not marked the renewal done."""


@dataclass(frozen=True)
class Step:
    """One reminder of a document's ladder.

    Args:
        name (:obj:`str`): A :class:`StepName` value.
        due_on (:class:`datetime.date`): The local day the reminder falls due.
    """

    name: str
    due_on: datetime.date


def months_before(day: datetime.date, months: int) -> datetime.date:
    """Go back a number of calendar months, keeping the day of the month where possible.

    The day is clamped to the end of the target month: 2027-05-31 minus 3 months is
    2027-02-28, and 2028-05-31 minus 3 months is 2028-02-29.

    Args:
        day (:class:`datetime.date`): The date to count back from.
        months (:obj:`int`): How many months to go back, ``0`` or more.

    Returns:
        :class:`datetime.date`: The earlier date.

    Raises:
        ValueError: If :paramref:`months` is negative or the result is before year 1.
    """
    if months < 0:
        raise ValueError(f"months must be 0 or more, not {months}")
    return _shift_months(day, -months)


def months_after(day: datetime.date, months: int) -> datetime.date:
    """Go forward a number of calendar months, clamping the day like :func:`months_before`.

    The special period ends 2 months after the expiry: ``months_after(2027-12-31, 2)`` is
    2028-02-29.
    """
    if months < 0:
        raise ValueError(f"months must be 0 or more, not {months}")
    return _shift_months(day, months)


def _shift_months(day: datetime.date, months: int) -> datetime.date:
    year, month_index = divmod(day.year * 12 + day.month - 1 + months, 12)
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return datetime.date(year, month_index + 1, min(day.day, last_day))


def reminder_steps(kind: DocumentKind, expires_on: datetime.date) -> list[Step]:
    """The reminder ladder of a document.

    Steps that fall on the same day are sent once, under the earliest name of the ladder:
    for :attr:`DocumentKind.INSURANCE_CERTIFICATE` the window opens one month before
    expiry, so its ladder has ``window`` but no ``month``. Steps already in the past are
    included; the caller leaves out those it can no longer send.

    Args:
        kind (:class:`DocumentKind`): The kind of document.
        expires_on (:class:`datetime.date`): Its expiry date.

    Returns:
        list[:class:`Step`]: ``window``, ``month``, ``two_weeks``, ``week`` and ``day``,
        all before :paramref:`expires_on`, then ``after``, the day after it; sorted by
        date, one step per date.
    """
    ladder = (
        Step(StepName.WINDOW, months_before(expires_on, kind.window_months)),
        Step(StepName.MONTH, months_before(expires_on, 1)),
        Step(StepName.TWO_WEEKS, expires_on - datetime.timedelta(days=14)),
        Step(StepName.WEEK, expires_on - datetime.timedelta(days=7)),
        Step(StepName.DAY, expires_on - datetime.timedelta(days=1)),
        Step(StepName.AFTER, expires_on + datetime.timedelta(days=1)),
    )
    steps: dict[datetime.date, Step] = {}
    for step in ladder:
        steps.setdefault(step.due_on, step)
    return sorted(steps.values(), key=lambda step: step.due_on)


def reminder_dates(kind: DocumentKind, expires_on: datetime.date) -> list[datetime.date]:
    """The days on which a reminder falls due before a document expires.

    Args:
        kind (:class:`DocumentKind`): The kind of document.
        expires_on (:class:`datetime.date`): Its expiry date.

    Returns:
        list[:class:`datetime.date`]: The days of :func:`reminder_steps` without
        ``after``: sorted, unique, all before :paramref:`expires_on`, the first being
        the day the renewal window opens.
    """
    return [step.due_on for step in reminder_steps(kind, expires_on) if step.name != StepName.AFTER]


def due_at(day: datetime.date, *, hour: int = 9, tz: str = "Asia/Tokyo") -> datetime.datetime:
    """The moment a reminder for a given local day is sent.

    Args:
        day (:class:`datetime.date`): The local day the reminder falls due.
        hour (:obj:`int`, optional): The local hour, from 7 to 21 inclusive, so that no
            reminder arrives at night. Defaults to ``9``.
        tz (:obj:`str`, optional): The resident's IANA time zone. Defaults to
            ``"Asia/Tokyo"``.

    Returns:
        :class:`datetime.datetime`: That local hour on :paramref:`day`, as an aware
        datetime in UTC.

    Raises:
        ValueError: If :paramref:`hour` is outside 7 to 21.
        zoneinfo.ZoneInfoNotFoundError: If :paramref:`tz` is not a known time zone.
    """
    if not _EARLIEST_HOUR <= hour <= _LATEST_HOUR:
        raise ValueError(f"hour must be from {_EARLIEST_HOUR} to {_LATEST_HOUR}, not {hour}")
    local = datetime.datetime.combine(day, datetime.time(hour), tzinfo=ZoneInfo(tz))
    return local.astimezone(datetime.UTC)
