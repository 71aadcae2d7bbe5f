"""Parse the expiry dates that residents type.

Residents write dates the way their country, their card or their phone keyboard does:
``2027-03-15``, ``15.03.2027``, ``March 15, 2027``, ``15 de março de 2027``,
``2027年3月15日(月)``, ``令和9年3月15日`` or ``R9.3.15``. :func:`parse_date` turns all of
these into a :class:`datetime.date` and checks that it is a plausible expiry date.

The text is normalised with NFKC first, so full-width digits and punctuation work the same
as ASCII ones. Diacritics are ignored (``marco`` reads as ``março``, ``thang`` as ``tháng``)
and case does not matter. Surrounding whitespace, trailing punctuation and a weekday in
parentheses at the end (``(月)``, ``（Mon）``) are tolerated; the weekday is not checked.

A numeric date whose first two fields could be either day or month (``03/04/2027``) is never
guessed: :func:`parse_date` raises :class:`DateParseError` with
:attr:`DateErrorReason.AMBIGUOUS` and both readings, so that the conversation can ask.
"""

import datetime
import re
import unicodedata
from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple

__all__ = ["DateErrorReason", "DateParseError", "check_range", "parse_date"]

_MAX_YEARS_AHEAD = 10


class DateErrorReason(StrEnum):
    """Why a text could not be accepted as an expiry date.

    The values are stable codes: the conversation translates them for the resident.
    """

    EMPTY = "empty"
    """Nothing but whitespace or punctuation was given."""
    UNRECOGNISED = "unrecognised"
    """The text is not written in any date format that Kigen knows."""
    INVALID = "invalid"
    """The format is known but the date does not exist (``2027-02-30``, month 13,
    ``令和0年``, a date before its era began)."""
    PAST = "past"
    """The date is before today."""
    TOO_FAR = "too_far"
    """The date is more than ten years after today."""
    AMBIGUOUS = "ambiguous"
    """Day-first and month-first readings are both valid and differ; see
    :attr:`DateParseError.candidates`."""


class DateParseError(ValueError):
    """Raised by :func:`parse_date` when a text is not an acceptable expiry date.

    The message is meant for developers; residents are told about :attr:`reason` in their
    own language.

    Args:
        reason (:class:`DateErrorReason`): Why the text was refused.
        message (:obj:`str`): A description for logs and tracebacks.
        candidates (tuple[:class:`datetime.date`, :class:`datetime.date`], optional): The
            day-first and the month-first reading, for :attr:`DateErrorReason.AMBIGUOUS`.

    Attributes:
        reason (:class:`DateErrorReason`): Why the text was refused.
        candidates (tuple[:class:`datetime.date`, :class:`datetime.date`] | :obj:`None`):
            For :attr:`DateErrorReason.AMBIGUOUS`, the day-first reading and then the
            month-first reading; :obj:`None` for every other reason.
    """

    def __init__(
        self,
        reason: DateErrorReason,
        message: str,
        *,
        candidates: tuple[datetime.date, datetime.date] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.candidates = candidates


class _Era(NamedTuple):
    offset: int  # Gregorian year of the era's year 0
    start: datetime.date


_REIWA = _Era(2018, datetime.date(2019, 5, 1))
_HEISEI = _Era(1988, datetime.date(1989, 1, 8))
_SHOWA = _Era(1925, datetime.date(1926, 12, 25))
_ERAS = {"令和": _REIWA, "r": _REIWA, "平成": _HEISEI, "h": _HEISEI, "昭和": _SHOWA, "s": _SHOWA}

_KANJI_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}

# Month names in English, Portuguese, Spanish, Indonesian and Filipino, without
# diacritics, plus Indonesian "agt", which is no prefix of "agustus". Any prefix of three
# letters or more that names a single month also counts, which covers the usual
# abbreviations (Sept, Mar, Fev, Okt, Dic …).
_MONTH_NAMES: dict[int, tuple[str, ...]] = {
    1: ("january", "janeiro", "enero", "januari"),
    2: ("february", "fevereiro", "febrero", "februari", "pebrero"),
    3: ("march", "marco", "marzo", "maret", "marso"),
    4: ("april", "abril"),
    5: ("may", "maio", "mayo", "mei"),
    6: ("june", "junho", "junio", "juni", "hunyo"),
    7: ("july", "julho", "julio", "juli", "hulyo"),
    8: ("august", "agosto", "agustus", "agt"),
    9: ("september", "setembro", "septiembre", "setiembre", "setyembre", "septiyembre"),
    10: ("october", "outubro", "octubre", "oktober", "oktubre"),
    11: ("november", "novembro", "noviembre", "nobyembre"),
    12: ("december", "dezembro", "diciembre", "desember", "disyembre"),
}


def _month_lookup() -> dict[str, int]:
    months: dict[str, set[int]] = {}
    for number, names in _MONTH_NAMES.items():
        for name in names:
            for end in range(3, len(name) + 1):
                months.setdefault(name[:end], set()).add(number)
    return {word: numbers.pop() for word, numbers in months.items() if len(numbers) == 1}


_MONTHS = _month_lookup()

_D = r"[0-9]{1,2}"
_Y = r"[0-9]{4}"
_K = r"[〇一二三四五六七八九十]+"
_SEP = r"(?: ?[-/.] ?| )"
_WORD_SEP = r"(?: ?[-/,] ?| )?(?:(?:de|del|of) )?"
_ORDINAL = r"(?:st|nd|rd|th)?"
_ERA = r"(?P<era>令和|平成|昭和|[rhs])"
_WEEKDAY_SUFFIX = re.compile(r" ?\( ?[^\W\d_]{1,12}\.? ?\)$")
_TRAILING = " .,;:!?。、"


def _clean(text: str) -> str:
    normalised = unicodedata.normalize("NFKC", text)
    decomposed = unicodedata.normalize("NFD", normalised)
    # NFC afterwards recomposes Hangul, whose jamo are not combining marks.
    bare = unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )
    cleaned = re.sub(r"\s+", " ", bare).casefold().strip(_TRAILING)
    return _WEEKDAY_SUFFIX.sub("", cleaned).rstrip(_TRAILING)


def _number(token: str) -> int | None:
    if token.isascii():
        return int(token)
    if token == "元":
        return 1
    tens, has_ten, ones = token.partition("十")
    if not has_ten:
        return int("".join(str(_KANJI_DIGITS[c]) for c in token))
    if len(tens) > 1 or len(ones) > 1 or ones == "十":
        return None
    return (_KANJI_DIGITS[tens] if tens else 1) * 10 + (_KANJI_DIGITS[ones] if ones else 0)


def _make(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _exact(year: int, month: int, day: int) -> datetime.date:
    found = _make(year, month, day)
    if found is None:
        raise DateParseError(
            DateErrorReason.INVALID, f"no such date: year {year}, month {month}, day {day}"
        )
    return found


def _fields(match: re.Match[str], *names: str) -> list[int]:
    values = []
    for name in names:
        value = _number(match[name])
        if value is None:
            raise DateParseError(
                DateErrorReason.UNRECOGNISED, f"malformed kanji numeral {match[name]!r}"
            )
        values.append(value)
    return values


def _from_ymd(match: re.Match[str]) -> datetime.date:
    year, month, day = _fields(match, "y", "m", "d")
    return _exact(year, month, day)


def _from_era(match: re.Match[str]) -> datetime.date:
    era = _ERAS[match["era"]]
    era_year, month, day = _fields(match, "y", "m", "d")
    # Years past an era's end are accepted (平成32年 = 2020 is printed on old cards).
    found = _exact(era.offset + era_year, month, day) if era_year > 0 else None
    if found is None or found < era.start:
        raise DateParseError(DateErrorReason.INVALID, f"{match[0]!r} is outside its era")
    return found


def _from_month_name(match: re.Match[str]) -> datetime.date:
    month = _MONTHS.get(match["mon"])
    if month is None:
        raise DateParseError(DateErrorReason.UNRECOGNISED, f"unknown month {match['mon']!r}")
    return _exact(int(match["y"]), month, int(match["d"]))


def _from_day_or_month_first(match: re.Match[str]) -> datetime.date:
    first, second, year = int(match["a"]), int(match["b"]), int(match["y"])
    day_first = _make(year, second, first)
    month_first = _make(year, first, second)
    if day_first and month_first and day_first != month_first:
        raise DateParseError(
            DateErrorReason.AMBIGUOUS,
            f"{match[0]!r} reads as {day_first} or {month_first}",
            candidates=(day_first, month_first),
        )
    found = day_first or month_first
    if found is None:
        raise DateParseError(DateErrorReason.INVALID, f"{match[0]!r} is no date either way")
    return found


_FORMATS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], datetime.date]], ...] = (
    (re.compile(rf"(?P<y>{_Y}){_SEP}(?P<m>{_D}){_SEP}(?P<d>{_D})"), _from_ymd),
    (re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"), _from_ymd),
    (re.compile(rf"(?P<a>{_D}){_SEP}(?P<b>{_D}){_SEP}(?P<y>{_Y})"), _from_day_or_month_first),
    (
        re.compile(
            rf"(?P<y>{_Y}|{_K}) ?[年년] ?(?P<m>{_D}|{_K}) ?[月월] ?(?P<d>{_D}|{_K}) ?[日号號일]?"
        ),
        _from_ymd,
    ),
    (
        re.compile(
            rf"{_ERA} ?(?P<y>元|{_D}|{_K}) ?年 ?(?P<m>{_D}|{_K}) ?月 ?(?P<d>{_D}|{_K}) ?日?"
        ),
        _from_era,
    ),
    (re.compile(rf"{_ERA} ?(?P<y>元|{_D}){_SEP}(?P<m>{_D}){_SEP}(?P<d>{_D})"), _from_era),
    (
        re.compile(rf"(?:ngay )?(?P<d>{_D}) ?thang ?(?P<m>{_D})(?: ?nam ?| ?[,/] ?| )(?P<y>{_Y})"),
        _from_ymd,
    ),
    (
        re.compile(rf"(?P<d>{_D}){_ORDINAL}{_WORD_SEP}(?P<mon>[^\W\d_]+)\.?{_WORD_SEP}(?P<y>{_Y})"),
        _from_month_name,
    ),
    (
        re.compile(rf"(?P<mon>[^\W\d_]+)\.?{_WORD_SEP}(?P<d>{_D}){_ORDINAL}{_WORD_SEP}(?P<y>{_Y})"),
        _from_month_name,
    ),
)


def _read(cleaned: str) -> datetime.date:
    if not cleaned:
        raise DateParseError(DateErrorReason.EMPTY, "no date given")
    for pattern, build in _FORMATS:
        match = pattern.fullmatch(cleaned)
        if match:
            return build(match)
    raise DateParseError(DateErrorReason.UNRECOGNISED, f"no known date format: {cleaned!r}")


def _plus_years(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def parse_date(text: str, *, today: datetime.date) -> datetime.date:
    """Read an expiry date typed by a resident.

    Accepted, after NFKC normalisation (so ``２０２７／３／１５`` works too):

    * year first: ``2027-03-15``, ``2027/3/15``, ``2027.3.15``, ``2027 3 15``, ``20270315``;
    * day or month first: ``15.03.2027``, ``15/03/2027``, ``15-03-2027``, ``03/15/2027``,
      when only one reading is a valid date or both readings are the same date;
    * month names in English, Portuguese, Spanish, Indonesian and Filipino, full or
      abbreviated, day first or month first: ``15 March 2027``, ``March 15, 2027``,
      ``15th March 2027``, ``Sept 3 2027``, ``15 de março de 2027``, ``15 Maret 2027``,
      ``Marso 15, 2027``;
    * Vietnamese ``ngày 15 tháng 3 năm 2027`` and ``15 tháng 3, 2027``;
    * Chinese, Japanese and Korean ``2027年3月15日``, ``2027年3月15号``, ``2027년 3월 15일``;
    * Japanese eras, with Arabic or kanji numerals and ``元`` for year 1: ``令和9年3月15日``,
      ``令和九年三月十五日``, ``令和元年5月1日``, ``R9.3.15``, ``R09/03/15``, ``H31.4.30``.
      令和 (R) starts on 2019-05-01, 平成 (H) on 1989-01-08, 昭和 (S) on 1926-12-25; a year
      past an era's end counts on from it (``平成32年`` is 2020).

    Args:
        text (:obj:`str`): What the resident wrote.
        today (:class:`datetime.date`): The resident's current date (Asia/Tokyo).

    Returns:
        :class:`datetime.date`: The date, between :paramref:`today` and ten years after it
        (29 February moves to 28 February when the year has none), both included.

    Raises:
        DateParseError: With :attr:`~DateParseError.reason` set to one of the
            :class:`DateErrorReason` codes; for :attr:`DateErrorReason.AMBIGUOUS` also
            with the two :attr:`~DateParseError.candidates`, which are not range-checked:
            pass the one the resident chooses to :func:`check_range`.
    """
    found = _read(_clean(text))
    check_range(found, today=today)
    return found


def accepted_range(today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The first and last expiry dates :func:`check_range` accepts (for date pickers)."""
    return today, _plus_years(today, _MAX_YEARS_AHEAD)


def check_range(day: datetime.date, *, today: datetime.date) -> None:
    """Check that a date is plausible as an expiry date: not past, not too far ahead.

    :func:`parse_date` applies this itself; call it for dates that were picked (a LINE
    date picker) or chosen among :attr:`DateParseError.candidates`.

    Args:
        day (:class:`datetime.date`): The expiry date.
        today (:class:`datetime.date`): The resident's current date (Asia/Tokyo).

    Raises:
        DateParseError: With :attr:`DateErrorReason.PAST` if :paramref:`day` is before
            :paramref:`today`, or :attr:`DateErrorReason.TOO_FAR` if it is more than ten
            years after it (29 February moves to 28 February when the year has none).
    """
    earliest, limit = accepted_range(today)
    if day < earliest:
        raise DateParseError(DateErrorReason.PAST, f"{day} is before {today}")
    if day > limit:
        raise DateParseError(DateErrorReason.TOO_FAR, f"{day} is after {limit}")
