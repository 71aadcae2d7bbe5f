"""Tests for core.privacy: what is found, what is redacted, and what is left alone."""

import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.privacy import Finding, PiiKind, Redacted, contains_sensitive_id, find_pii, redact

FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
# Context around an identifier: no digits, nothing that normalises to a digit.
SURROUNDINGS = st.text(alphabet="abxyz ,.!?:()はのです\n", max_size=12)


def with_check_digit(first_eleven: str) -> str:
    """Complete 11 digits into a My Number with the official check digit."""
    total = 0
    for n, digit in enumerate(reversed(first_eleven), start=1):
        total += int(digit) * (n + 1 if n <= 6 else n - 5)
    remainder = total % 11
    return first_eleven + str(0 if remainder <= 1 else 11 - remainder)


def written(number: str, separator: str, full_width: bool) -> str:
    text = separator.join([number[:4], number[4:8], number[8:]])
    return text.translate(FULL_WIDTH_DIGITS) if full_width else text


def digits_in(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c.isdigit())


my_numbers = st.text(alphabet="0123456789", min_size=11, max_size=11).map(with_check_digit)
separators = st.sampled_from(["", " ", "-", "　", "－", "ー", "‐", "−", " - ", "  "])


# --- My Number ------------------------------------------------------------------------


def test_known_valid_my_number() -> None:
    # 12345678901: weighted sum 212, remainder 3, check digit 11 - 3 = 8
    assert with_check_digit("12345678901") == "123456789018"
    assert find_pii("123456789018") == [Finding(PiiKind.MY_NUMBER, 0, 12, True)]
    assert find_pii("123456789012") == [Finding(PiiKind.MY_NUMBER, 0, 12, False)]


@given(
    number=my_numbers,
    separator=separators,
    full_width=st.booleans(),
    before=SURROUNDINGS,
    after=SURROUNDINGS,
)
def test_valid_my_number_found_as_certain(
    number: str, separator: str, full_width: bool, before: str, after: str
) -> None:
    form = written(number, separator, full_width)
    text = before + form + after
    assert find_pii(text) == [
        Finding(PiiKind.MY_NUMBER, len(before), len(before) + len(form), True)
    ]
    redacted = redact(text)
    assert redacted == Redacted(before + "[my number]" + after, frozenset({"my_number"}))
    assert digits_in(redacted.text) == ""
    assert contains_sensitive_id(text)


@given(number=my_numbers, wrong=st.integers(1, 9), separator=separators, full_width=st.booleans())
def test_wrong_check_digit_is_probable(
    number: str, wrong: int, separator: str, full_width: bool
) -> None:
    probable = number[:11] + str((int(number[11]) + wrong) % 10)
    text = f"No. {written(probable, separator, full_width)} ok"
    [finding] = find_pii(text)
    assert (finding.kind, finding.certain) == (PiiKind.MY_NUMBER, False)
    assert digits_in(redact(text).text) == ""
    assert contains_sensitive_id(text)


@given(digits=st.text(alphabet="0123456789", min_size=13, max_size=30))
def test_long_digit_runs_are_numbers(digits: str) -> None:
    text = f"ref {digits} end"
    assert find_pii(text) == [Finding(PiiKind.NUMBER, 4, 4 + len(digits), False)]
    assert redact(text).text == "ref [number] end"
    assert not contains_sensitive_id(text)


@pytest.mark.parametrize(
    "text",
    ["4111 1111 1111 1111", "4111-1111-1111-1111", "３７８２ ８２２４６３ １０００５"],
)
def test_grouped_long_numbers_leak_nothing(text: str) -> None:
    assert redact(text) == Redacted("[number]", frozenset({"number"}))


def test_my_number_next_to_text_and_dots() -> None:
    assert redact("MN123456789018です").text == "MN[my number]です"
    assert redact("1234.5678.9018").text == "[my number]"


# --- residence card numbers -----------------------------------------------------------

card_numbers = st.tuples(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
)


@given(parts=card_numbers, separator=st.sampled_from(["", " ", "-", "  "]), lower=st.booleans())
def test_card_number_found(parts: tuple[str, str, str], separator: str, lower: bool) -> None:
    card = separator.join(parts)
    card = card.lower() if lower else card
    text = f"在留カード番号は{card}です"
    assert find_pii(text) == [Finding(PiiKind.CARD_NUMBER, 8, 8 + len(card), True)]
    assert redact(text).text == "在留カード番号は[card number]です"
    assert contains_sensitive_id(text)


def test_full_width_card_number_positions_refer_to_the_original() -> None:
    text = "番号 ＡＢ１２３４５６７８ＣＤ!"
    [finding] = find_pii(text)
    assert text[finding.start : finding.end] == "ＡＢ１２３４５６７８ＣＤ"
    assert redact(text).text == "番号 [card number]!"


# --- phone numbers and e-mail ---------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "090-1234-5678",
        "09012345678",
        "080 1234 5678",
        "070-1234-5678",
        "050-3818-1250",
        "03-5796-7112",
        "0357967112",
        "011-200-9595",
        "0120-0178-27",
        "0120-95-0178",
        "0570-013904",
        "0570-064-738",
        "0800-123-4567",
        "(03)5796-7112",
        "(03) 5796-7112",
        "03(5796)7112",
        "０３－５７９６－７１１２",
        "０９０ー１２３４ー５６７８",
        "+81-3-6734-0170",
        "+81 90 1234 5678",
        "+819012345678",
        "+81 (0)3-5796-7112",
        "+81 03-5796-7112",
        "＋８１－９０－１２３４－５６７８",
    ],
)
def test_phone_numbers(phone: str) -> None:
    text = f"Tel: {phone}, thanks"
    assert find_pii(text) == [Finding(PiiKind.PHONE, 5, 5 + len(phone), True)]
    assert redact(text) == Redacted("Tel: [phone], thanks", frozenset({"phone"}))
    assert not contains_sensitive_id(text)


@pytest.mark.parametrize(
    "email",
    ["taro@example.com", "first.last+kigen@mail.example.co.jp", "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ"],
)
def test_email(email: str) -> None:
    text = f"mail me at {email}."
    assert find_pii(text) == [Finding(PiiKind.EMAIL, 11, 11 + len(email), True)]
    assert redact(text).text == "mail me at [email]."


def test_several_kinds_in_one_text() -> None:
    text = "AB12345678CD, 1234 5678 9018, 090-1234-5678, a@b.jp, 期限 2027-03-15, ¥6,000"
    redacted = redact(text)
    assert redacted.text == "[card number], [my number], [phone], [email], 期限 2027-03-15, ¥6,000"
    assert redacted.kinds == {"card_number", "my_number", "phone", "email"}
    assert [f.kind for f in find_pii(text)] == ["card_number", "my_number", "phone", "email"]


# --- what is left alone ---------------------------------------------------------------

date_forms = st.sampled_from(
    [
        "{d:%Y-%m-%d}",
        "{d:%Y/%m/%d}",
        "{d.year}/{d.month}/{d.day}",
        "{d:%d.%m.%Y}",
        "{d:%m/%d/%Y}",
        "{d:%Y%m%d}",
        "{d.year}年{d.month}月{d.day}日",
        "{d.year} {d.month} {d.day}",
    ]
)
yen_forms = st.sampled_from(["¥{n:,}", "{n:,}円", "{n}円", "{n:,} yen", "￥{n:,}"])
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))


@given(
    days=st.lists(st.tuples(dates, date_forms), min_size=1, max_size=3),
    amount=st.integers(0, 10**9),
    yen=yen_forms,
    full_width=st.booleans(),
)
def test_dates_and_yen_are_left_alone(
    days: list[tuple[date, str]], amount: int, yen: str, full_width: bool
) -> None:
    listed = " ".join(form.format(d=day) for day, form in days)
    text = f"期限は {listed}、手数料は{yen.format(n=amount)}です"
    if full_width:
        text = text.translate(FULL_WIDTH_DIGITS)
    assert find_pii(text) == []
    assert redact(text) == Redacted(text, frozenset())


@pytest.mark.parametrize(
    "text",
    [
        "I am 34 and have 2 kids",
        "Room 1203, 3-4-5 Shinjuku",
        "Fee ¥6,000 or ¥5,500 online, PR ¥10,000",
        "Open 9:30-17:30",
        "R9.3.15",
        "〒160-0004",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert find_pii(text) == []
