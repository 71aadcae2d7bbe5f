"""Tests for core.schedule: renewal windows, the reminder ladder and delivery times."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.schedule import (
    DocumentKind,
    Office,
    Step,
    due_at,
    months_after,
    months_before,
    reminder_dates,
    reminder_steps,
)

kinds = st.sampled_from(list(DocumentKind))
expiries = st.dates(min_value=date(2020, 1, 1), max_value=date(2045, 12, 31))


@pytest.mark.parametrize(
    ("kind", "window_months", "office"),
    [
        ("residence_card", 3, "immigration"),
        ("residence_card_pr", 2, "immigration"),
        ("spr_certificate", 2, "municipal"),
        ("specified_residence_card", 3, "immigration"),
        ("my_number_card", 3, "municipal"),
        ("e_certificate", 3, "municipal"),
        ("insurance_certificate", 1, "insurer"),
    ],
)
def test_kinds(kind: str, window_months: int, office: str) -> None:
    assert DocumentKind(kind).window_months == window_months
    assert DocumentKind(kind).office == Office(office)


def test_every_kind_is_covered() -> None:
    assert len(DocumentKind) == 7


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2027, 5, 31), 3, date(2027, 2, 28)),
        (date(2028, 5, 31), 3, date(2028, 2, 29)),
        (date(2027, 3, 31), 1, date(2027, 2, 28)),
        (date(2027, 7, 31), 1, date(2027, 6, 30)),
        (date(2027, 3, 15), 3, date(2026, 12, 15)),
        (date(2027, 1, 31), 1, date(2026, 12, 31)),
        (date(2027, 3, 15), 0, date(2027, 3, 15)),
        (date(2027, 3, 15), 27, date(2024, 12, 15)),
    ],
)
def test_months_before(day: date, months: int, expected: date) -> None:
    assert months_before(day, months) == expected


def test_months_before_rejects_negative_months() -> None:
    with pytest.raises(ValueError, match="months"):
        months_before(date(2027, 3, 15), -1)


@given(day=expiries, months=st.integers(0, 36))
def test_months_before_properties(day: date, months: int) -> None:
    earlier = months_before(day, months)
    assert (day.year - earlier.year) * 12 + day.month - earlier.month == months
    assert earlier.day == day.day or (earlier.day < day.day and earlier.day >= 28)
    next_day = earlier + timedelta(days=1)
    if earlier.day < day.day:  # clamped: it is the last day of its month
        assert next_day.month != earlier.month


def test_residence_card_ladder() -> None:
    assert reminder_steps(DocumentKind.RESIDENCE_CARD, date(2027, 3, 15)) == [
        Step("window", date(2026, 12, 15)),
        Step("month", date(2027, 2, 15)),
        Step("two_weeks", date(2027, 3, 1)),
        Step("week", date(2027, 3, 8)),
        Step("day", date(2027, 3, 14)),
        Step("after", date(2027, 3, 16)),
    ]


def test_pr_card_ladder_with_clamped_window() -> None:
    steps = reminder_steps(DocumentKind.RESIDENCE_CARD_PR, date(2027, 4, 30))
    assert [s.name for s in steps] == ["window", "month", "two_weeks", "week", "day", "after"]
    assert steps[0] == Step("window", date(2027, 2, 28))
    assert steps[1] == Step("month", date(2027, 3, 30))


def test_insurance_certificate_window_replaces_month() -> None:
    assert reminder_steps(DocumentKind.INSURANCE_CERTIFICATE, date(2027, 7, 31)) == [
        Step("window", date(2027, 6, 30)),
        Step("two_weeks", date(2027, 7, 17)),
        Step("week", date(2027, 7, 24)),
        Step("day", date(2027, 7, 30)),
        Step("after", date(2027, 8, 1)),
    ]


def test_reminder_dates_leave_out_after() -> None:
    assert reminder_dates(DocumentKind.SPR_CERTIFICATE, date(2027, 3, 15)) == [
        date(2027, 1, 15),
        date(2027, 2, 15),
        date(2027, 3, 1),
        date(2027, 3, 8),
        date(2027, 3, 14),
    ]


@given(kind=kinds, expires_on=expiries)
def test_reminder_dates_properties(kind: DocumentKind, expires_on: date) -> None:
    days = reminder_dates(kind, expires_on)
    window = months_before(expires_on, kind.window_months)
    assert days == sorted(set(days))
    assert days[0] == window
    assert all(window <= day < expires_on for day in days)
    assert expires_on - timedelta(days=1) in days


@given(kind=kinds, expires_on=expiries)
def test_reminder_steps_properties(kind: DocumentKind, expires_on: date) -> None:
    steps = reminder_steps(kind, expires_on)
    assert steps[-1] == Step("after", expires_on + timedelta(days=1))
    assert [s.due_on for s in steps[:-1]] == reminder_dates(kind, expires_on)
    assert len({s.name for s in steps}) == len(steps)
    order = ["window", "month", "two_weeks", "week", "day", "after"]
    assert [s.name for s in steps] == [name for name in order if name in {s.name for s in steps}]
    assert ("month" in {s.name for s in steps}) == (kind.window_months > 1)


def test_due_at_default_is_9_in_tokyo() -> None:
    moment = due_at(date(2027, 3, 15))
    assert moment == datetime(2027, 3, 15, 0, 0, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("hour", "expected"),
    [(7, datetime(2027, 3, 14, 22, tzinfo=UTC)), (21, datetime(2027, 3, 15, 12, tzinfo=UTC))],
)
def test_due_at_hour_bounds(hour: int, expected: datetime) -> None:
    assert due_at(date(2027, 3, 15), hour=hour) == expected


@pytest.mark.parametrize("hour", [0, 6, 22, 23, -1, 24])
def test_due_at_rejects_night_hours(hour: int) -> None:
    with pytest.raises(ValueError, match="hour"):
        due_at(date(2027, 3, 15), hour=hour)


def test_due_at_other_time_zone_follows_daylight_saving() -> None:
    assert due_at(date(2027, 3, 27), tz="Europe/Berlin") == datetime(2027, 3, 27, 8, tzinfo=UTC)
    assert due_at(date(2027, 3, 29), tz="Europe/Berlin") == datetime(2027, 3, 29, 7, tzinfo=UTC)


def test_months_after_clamps_to_the_end_of_the_month():
    assert months_after(date(2027, 12, 31), 2) == date(2028, 2, 29)
    assert months_after(date(2027, 3, 15), 2) == date(2027, 5, 15)
    assert months_after(date(2027, 11, 30), 3) == date(2028, 2, 29)
