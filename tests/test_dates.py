"""Tests for core.dates: the formats residents type, each error reason, round trips."""

import contextlib
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.dates import DateErrorReason, DateParseError, check_range, parse_date

TODAY = date(2026, 11, 1)
TEN_YEARS = date(2036, 11, 1)
MARCH_15 = date(2027, 3, 15)

ENGLISH_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
FULL_WIDTH = str.maketrans("0123456789-/.", "０１２３４５６７８９－／．")
KANJI_DIGITS = "〇一二三四五六七八九"


def kanji(number: int) -> str:
    """Write 1..99 in kanji numerals the way a Japanese document does (十五, 二十, 三)."""
    tens, ones = divmod(number, 10)
    return ("" if tens == 0 else "十" if tens == 1 else KANJI_DIGITS[tens] + "十") + (
        "" if ones == 0 else KANJI_DIGITS[ones]
    )


def reason_of(text: str, today: date = TODAY) -> DateParseError:
    with pytest.raises(DateParseError) as caught:
        parse_date(text, today=today)
    return caught.value


@pytest.mark.parametrize(
    "text",
    [
        # year first
        "2027-03-15",
        "2027/3/15",
        "2027.3.15",
        "20270315",
        "2027 3 15",
        "2027. 3. 15.",
        # day first / month first, unambiguous
        "15.03.2027",
        "15/03/2027",
        "15-03-2027",
        "03/15/2027",
        "3/15/2027",
        # English
        "15 March 2027",
        "March 15, 2027",
        "Mar 15 2027",
        "15th March 2027",
        "15 MARCH 2027",
        "march 15 2027",
        "Mar. 15, 2027",
        "15-Mar-2027",
        "15th of March 2027",
        # Portuguese, Spanish, Indonesian, Filipino
        "15 de março de 2027",
        "15 de marco de 2027",
        "15 de marzo de 2027",
        "15 de marzo del 2027",
        "15 Maret 2027",
        "Marso 15, 2027",
        "15 Marso 2027",
        # Vietnamese
        "ngày 15 tháng 3 năm 2027",
        "15 tháng 3, 2027",
        "Ngày 15 tháng 03 năm 2027",
        # Korean, Chinese, Japanese
        "2027년 3월 15일",
        "2027年3月15日",
        "2027年3月15号",
        "2027年03月15日",
        "二〇二七年三月十五日",
        # Japanese eras
        "令和9年3月15日",
        "令和九年三月十五日",
        "R9.3.15",
        "R9/3/15",
        "r9.3.15",
        "R09.03.15",
        "R9-3-15",
        "令和9.3.15",
        "㋿9.3.15",
        # full width, weekday, whitespace, trailing punctuation
        "２０２７年３月１５日",
        "２０２７－０３－１５",
        "Ｒ９．３．１５",
        "2027年3月15日(月)",
        "2027年3月15日（月）",
        "2027年3月15日(月曜日)。",
        "2027/03/15 (Mon)",
        "  2027-03-15  ",
        "2027-03-15.",
        "March 15, 2027!",
        "\t15/03/2027\n",
    ],
)
def test_accepted_formats(text: str) -> None:
    assert parse_date(text, today=TODAY) == MARCH_15


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sept 3 2027", date(2027, 9, 3)),
        ("sep 3, 2027", date(2027, 9, 3)),
        ("1st May 2027", date(2027, 5, 1)),
        ("2nd June 2027", date(2027, 6, 2)),
        ("23rd Dec 2027", date(2027, 12, 23)),
        ("3 de setembro de 2027", date(2027, 9, 3)),
        ("3 de septiembre de 2027", date(2027, 9, 3)),
        ("3 Agustus 2027", date(2027, 8, 3)),
        ("3 Agt 2027", date(2027, 8, 3)),
        ("Oktubre 3, 2027", date(2027, 10, 3)),
        ("3 Desember 2027", date(2027, 12, 3)),
        ("3 Mei 2027", date(2027, 5, 3)),
        ("Hunyo 3, 2027", date(2027, 6, 3)),
        ("3 fev 2027", date(2027, 2, 3)),
        ("04/04/2027", date(2027, 4, 4)),
        ("2027年12月1日", date(2027, 12, 1)),
        ("令和十年十二月二十日", date(2028, 12, 20)),
        ("令和10年12月20日", date(2028, 12, 20)),
    ],
)
def test_accepted_dates(text: str, expected: date) -> None:
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("令和元年5月1日", date(2019, 5, 1)),
        ("R1.5.1", date(2019, 5, 1)),
        ("H31.4.30", date(2019, 4, 30)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("平成32年3月31日", date(2020, 3, 31)),  # printed on cards issued before 令和
        ("h32.3.31", date(2020, 3, 31)),
    ],
)
def test_era_boundaries(text: str, expected: date) -> None:
    assert parse_date(text, today=date(2019, 1, 1)) == expected


def test_showa() -> None:
    assert parse_date("昭和64年1月7日", today=date(1989, 1, 1)) == date(1989, 1, 7)
    assert parse_date("S63.12.31", today=date(1988, 1, 1)) == date(1988, 12, 31)


@pytest.mark.parametrize("text", ["", "   ", "。", " ... ", "(月)", "！"])
def test_empty(text: str) -> None:
    assert reason_of(text).reason == DateErrorReason.EMPTY


@pytest.mark.parametrize(
    "text",
    [
        "tomorrow",
        "2027",
        "2027-03",
        "15 Foo 2027",
        "15/03/27",
        "X9.3.15",
        "2027-03-15 and 2027-04-01",
        "令和十十年1月1日",
        "1234567",
    ],
)
def test_unrecognised(text: str) -> None:
    assert reason_of(text).reason == DateErrorReason.UNRECOGNISED


@pytest.mark.parametrize(
    "text",
    [
        "2027-02-30",
        "2027-13-01",
        "2027-00-10",
        "20271301",
        "2027/4/31",
        "13/13/2027",
        "31/31/2027",
        "30 February 2027",
        "2027年2月29日",
        "令和0年1月1日",
        "R0.1.1",
        "R1.4.30",  # still 平成
        "平成1年1月7日",  # still 昭和
        "令和9年2月30日",
    ],
)
def test_invalid(text: str) -> None:
    error = reason_of(text, today=date(1900, 1, 1))
    assert error.reason == DateErrorReason.INVALID
    assert error.candidates is None


@pytest.mark.parametrize(
    ("text", "day_first", "month_first"),
    [
        ("03/04/2027", date(2027, 4, 3), date(2027, 3, 4)),
        ("03.04.2027", date(2027, 4, 3), date(2027, 3, 4)),
        ("3-4-2027", date(2027, 4, 3), date(2027, 3, 4)),
        ("12/01/2027", date(2027, 1, 12), date(2027, 12, 1)),
        ("０３／０４／２０２７", date(2027, 4, 3), date(2027, 3, 4)),
    ],
)
def test_ambiguous(text: str, day_first: date, month_first: date) -> None:
    error = reason_of(text)
    assert error.reason == DateErrorReason.AMBIGUOUS
    assert error.candidates == (day_first, month_first)


def test_past_and_today() -> None:
    assert reason_of("2026-10-31").reason == DateErrorReason.PAST
    assert reason_of("H31.4.30").reason == DateErrorReason.PAST
    assert parse_date("2026-11-01", today=TODAY) == TODAY


def test_too_far() -> None:
    assert parse_date("2036-11-01", today=TODAY) == TEN_YEARS
    assert reason_of("2036-11-02").reason == DateErrorReason.TOO_FAR


def test_too_far_from_29_february() -> None:
    leap_day = date(2028, 2, 29)
    assert parse_date("2038-02-28", today=leap_day) == date(2038, 2, 28)
    assert reason_of("2038-03-01", today=leap_day).reason == DateErrorReason.TOO_FAR


def test_error_is_value_error_with_reason_code() -> None:
    error = reason_of("2027-02-30")
    assert isinstance(error, ValueError)
    assert error.reason == "invalid"


def test_check_range() -> None:
    check_range(TODAY, today=TODAY)
    check_range(TEN_YEARS, today=TODAY)
    with pytest.raises(DateParseError) as past:
        check_range(date(2026, 10, 31), today=TODAY)
    assert past.value.reason == DateErrorReason.PAST
    with pytest.raises(DateParseError) as too_far:
        check_range(date(2036, 11, 2), today=TODAY)
    assert too_far.value.reason == DateErrorReason.TOO_FAR


# --- round trips ------------------------------------------------------------------------

FORMATS: dict[str, Callable[[date], str]] = {
    "iso": date.isoformat,
    "slashes": lambda d: f"{d.year}/{d.month}/{d.day}",
    "padded slashes": lambda d: f"{d:%Y/%m/%d}",
    "english day first": lambda d: f"{d.day} {ENGLISH_MONTHS[d.month - 1]} {d.year}",
    "english month first": lambda d: f"{ENGLISH_MONTHS[d.month - 1]} {d.day}, {d.year}",
    "english abbreviated": lambda d: f"{ENGLISH_MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    "kanji": lambda d: f"{d.year}年{d.month}月{d.day}日",
    "korean": lambda d: f"{d.year}년 {d.month}월 {d.day}일",
    "vietnamese": lambda d: f"ngày {d.day} tháng {d.month} năm {d.year}",
    "full width iso": lambda d: d.isoformat().translate(FULL_WIDTH),
    "full width kanji": lambda d: f"{d.year}年{d.month}月{d.day}日".translate(FULL_WIDTH),
}
ERA_FORMATS: dict[str, Callable[[date], str]] = {
    "reiwa": lambda d: f"令和{d.year - 2018}年{d.month}月{d.day}日",
    "reiwa kanji": lambda d: f"令和{kanji(d.year - 2018)}年{kanji(d.month)}月{kanji(d.day)}日",
    "R": lambda d: f"R{d.year - 2018}.{d.month}.{d.day}",
    "R padded": lambda d: f"R{d.year - 2018:02d}.{d.month:02d}.{d.day:02d}",
    "full width R": lambda d: f"R{d.year - 2018}.{d.month}.{d.day}".translate(FULL_WIDTH),
}
in_range = st.dates(min_value=TODAY, max_value=TEN_YEARS)


@given(day=in_range, style=st.sampled_from(sorted(FORMATS)))
def test_round_trip(day: date, style: str) -> None:
    assert parse_date(FORMATS[style](day), today=TODAY) == day


@given(day=in_range, style=st.sampled_from(sorted(ERA_FORMATS)))
def test_round_trip_reiwa(day: date, style: str) -> None:
    assert parse_date(ERA_FORMATS[style](day), today=TODAY) == day


@given(day=st.dates(min_value=date(2019, 5, 1), max_value=date(2029, 4, 30)))
def test_round_trip_reiwa_from_its_first_day(day: date) -> None:
    text = f"R{day.year - 2018}.{day.month}.{day.day}"
    assert parse_date(text, today=date(2019, 5, 1)) == day


@given(day=in_range, separator=st.sampled_from("./-"))
def test_round_trip_day_first(day: date, separator: str) -> None:
    assume(day.day > 12)
    text = f"{day.day:02d}{separator}{day.month:02d}{separator}{day.year}"
    assert parse_date(text, today=TODAY) == day


@given(day=in_range)
def test_round_trip_month_first(day: date) -> None:
    assume(day.day > 12)
    assert parse_date(f"{day.month:02d}/{day.day:02d}/{day.year}", today=TODAY) == day


@given(
    first=st.integers(1, 31),
    second=st.integers(1, 31),
    year=st.integers(2027, 2035),
    separator=st.sampled_from("./-"),
)
def test_numeric_dates_never_guessed(first: int, second: int, year: int, separator: str) -> None:
    readings = []
    for month, day in ((second, first), (first, second)):
        with contextlib.suppress(ValueError):
            readings.append(date(year, month, day))
    text = f"{first:02d}{separator}{second:02d}{separator}{year}"
    if len(set(readings)) == 2:
        error = reason_of(text)
        assert error.reason == DateErrorReason.AMBIGUOUS
        assert error.candidates == tuple(readings)
    elif readings:
        assert parse_date(text, today=TODAY) == readings[0]
    else:
        assert reason_of(text).reason == DateErrorReason.INVALID


@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2050, 12, 31)))
def test_range(day: date) -> None:
    if TODAY <= day <= TEN_YEARS:
        assert parse_date(day.isoformat(), today=TODAY) == day
    else:
        expected = DateErrorReason.PAST if day < TODAY else DateErrorReason.TOO_FAR
        assert reason_of(day.isoformat()).reason == expected
