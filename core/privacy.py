"""Find and redact personal identifiers in free text.

Residents sometimes paste their My Number, their residence card number or their phone number
into the chat. Nothing of the kind may be stored or logged: run text through :func:`redact`
first, and use :func:`contains_sensitive_id` to decide whether to warn the resident.

Detection works on an NFKC-normalised copy, so full-width digits, letters and dashes are
found too, but every :class:`Finding` gives positions in the **original** text, and
:func:`redact` replaces those spans in the original text, leaving everything else as the
resident wrote it. Each character is normalised on its own so that the positions map back
exactly.

What is found:

* ``my_number``: 12 digits, contiguous or grouped 4-4-4. *Certain* when the check digit is
  valid, otherwise *probable* (which also catches three 4-digit numbers in a row, such as
  ``2027 2028 2029``: better a false alarm than a leak).
* ``card_number``: residence card or special permanent resident certificate numbers, two
  letters, eight digits and two letters (``AB12345678CD``), optionally with spaces or a
  dash between the groups.
* ``phone``: Japanese phone numbers of ten digits (landlines, ``0120``, ``0570``) or eleven
  digits (``050``/``070``/``080``/``090``, ``020``, ``0800``), contiguous or in two or
  three groups (``03-5796-7112``, ``(03) 5796-7112``, ``03(5796)7112``), or with ``+81``.
  Kigen's own helpline numbers are phone numbers too when a resident writes them.
* ``email``: e-mail addresses.
* ``number``: any other number of 13 digits or more, contiguous or in groups of 3 to 6
  digits (``4111 1111 1111 1111``), so that no long number leaks. A 4-digit group next to
  a My Number (``1234 5678 9012 3456``) makes the whole a ``number``.

Digits form groups of a number when they are separated by spaces, tabs, dots, parentheses
or dash-like characters (full-width ones and ``ー`` included), never by ``/``, ``,`` or
``:``. A number is read inside one space-separated word or from whole words, so that two
dates side by side are not one number. Dates (``2027-03-15``, ``2027/03/15``,
``15.03.2027``, ``20270315``), yen amounts (``6,000``, ``10000円``) and other short numbers
are left alone.
"""

import itertools
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Finding",
    "PiiKind",
    "Redacted",
    "contains_sensitive_id",
    "find_pii",
    "redact",
    "strip_placeholders",
]


class PiiKind(StrEnum):
    """The kinds of identifier that :func:`find_pii` reports."""

    MY_NUMBER = "my_number"
    CARD_NUMBER = "card_number"
    PHONE = "phone"
    EMAIL = "email"
    NUMBER = "number"


_PLACEHOLDERS = {
    PiiKind.MY_NUMBER: "[my number]",
    PiiKind.CARD_NUMBER: "[card number]",
    PiiKind.PHONE: "[phone]",
    PiiKind.EMAIL: "[email]",
    PiiKind.NUMBER: "[number]",
}
_SENSITIVE = frozenset({PiiKind.MY_NUMBER, PiiKind.CARD_NUMBER})


@dataclass(frozen=True)
class Finding:
    """An identifier found in a text.

    Args:
        kind (:obj:`str`): One of the :class:`PiiKind` values.
        start (:obj:`int`): Index of the first character in the original text.
        end (:obj:`int`): Index just after the last character in the original text.
        certain (:obj:`bool`): :obj:`True` if the text is this kind of identifier beyond
            reasonable doubt: a My Number whose check digit is valid, a card number, a
            phone number or an e-mail address. :obj:`False` for a 12-digit number whose
            check digit does not match and for a long ``number``.
    """

    kind: str
    start: int
    end: int
    certain: bool


@dataclass(frozen=True)
class Redacted:
    """A text with its identifiers replaced by placeholders.

    Args:
        text (:obj:`str`): The original text, each identifier replaced by ``[my number]``,
            ``[card number]``, ``[phone]``, ``[email]`` or ``[number]``.
        kinds (frozenset[:obj:`str`]): The :class:`PiiKind` values that were replaced.
    """

    text: str
    kinds: frozenset[str]


_DASH = "\\-\u2010-\u2015\u2043\u2212\u30fc"  # ASCII, Unicode dashes, minus, katakana ー
_GAP = rf"[ \t]*[{_DASH}.()][ \t]*|[ \t]+"
_CHAIN = re.compile(rf"\d+(?:(?:{_GAP})\d+)*")
_DIGITS = re.compile(r"\d+")
_EMAIL = re.compile(r"[\w.%+-]+@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+", re.ASCII)
_CARD = re.compile(
    rf"[a-z]{{2}}[ \t]*[{_DASH}]?[ \t]*\d{{8}}[ \t]*[{_DASH}]?[ \t]*[a-z]{{2}}", re.IGNORECASE
)
_PLUS_81 = re.compile(
    rf"\+[ \t]*81(?:[ \t]*[{_DASH}])?[ \t]*(?:\(0\)[ \t]*)?\(?(?P<chain>{_CHAIN.pattern})"
)
_ELEVEN_DIGIT_PREFIXES = ("020", "050", "070", "080", "090", "0800")
_MASK = "\0"


def _check_digit(first_eleven: str) -> int:
    total = sum(
        int(digit) * (n + 1 if n <= 6 else n - 5)
        for n, digit in enumerate(reversed(first_eleven), start=1)
    )
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def _is_phone(groups: list[str]) -> bool:
    digits = "".join(groups)
    if len(groups) > 3 or digits[:1] != "0" or digits[1:2] == "0":
        return False
    if len(digits) == 11:
        return digits.startswith(_ELEVEN_DIGIT_PREFIXES)
    # Ten-digit numbers are split at most 4+6 (0570-013904); "01 20270315" is two dates.
    return len(digits) == 10 and all(len(group) <= 6 for group in groups[1:])


def _classify(groups: list[str]) -> tuple[PiiKind, bool] | None:
    digits = "".join(groups)
    lengths = [len(group) for group in groups]
    if lengths in ([12], [4, 4, 4]):
        return PiiKind.MY_NUMBER, _check_digit(digits[:11]) == int(digits[11])
    if _is_phone(groups):
        return PiiKind.PHONE, True
    if len(digits) >= 13 and (len(groups) == 1 or all(3 <= n <= 6 for n in lengths)):
        return PiiKind.NUMBER, False
    return None


def _normalise(text: str) -> tuple[str, list[int]]:
    """NFKC per character, and for each normalised character its index in ``text``."""
    parts: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        normal = unicodedata.normalize("NFKC", char)
        parts.append(normal)
        origin.extend([index] * len(normal))
    return "".join(parts), origin


def _number_spans(work: str) -> list[tuple[PiiKind, int, int, bool]]:
    spans = []
    for chain in _CHAIN.finditer(work):
        groups = list(_DIGITS.finditer(work, chain.start(), chain.end()))
        starts_word = [True] + [
            not work[before.end() : after.start()].strip(" \t")
            for before, after in itertools.pairwise(groups)
        ]
        starts_word.append(True)  # past the last group
        first = 0
        while first < len(groups):
            # The longest run of groups starting here that is an identifier wins. A run
            # stays inside one space-separated word or is made of whole words, so that
            # "2027-03-05 20280315" is never read as the phone number "05 20280315".
            for last in range(len(groups) - 1, first - 1, -1):
                inside_word = not any(starts_word[first + 1 : last + 1])
                if not (inside_word or (starts_word[first] and starts_word[last + 1])):
                    continue
                found = _classify([group[0] for group in groups[first : last + 1]])
                if found:
                    kind, certain = found
                    spans.append((kind, groups[first].start(), groups[last].end(), certain))
                    first = last + 1
                    break
            else:
                first += 1
    return spans


def find_pii(text: str) -> list[Finding]:
    """Find personal identifiers in a text.

    Args:
        text (:obj:`str`): Any text, as the resident wrote it.

    Returns:
        list[:class:`Finding`]: The identifiers, ordered by position, not overlapping, with
        positions in :paramref:`text`.
    """
    work, origin = _normalise(text)
    raw: list[tuple[PiiKind, int, int, bool]] = []

    def claim(kind: PiiKind, start: int, end: int, certain: bool) -> None:
        nonlocal work
        raw.append((kind, start, end, certain))
        # Masked characters are no digits or letters, so later patterns skip them.
        work = work[:start] + _MASK * (end - start) + work[end:]

    for match in _EMAIL.finditer(work):
        claim(PiiKind.EMAIL, match.start(), match.end(), True)
    for match in _CARD.finditer(work):
        claim(PiiKind.CARD_NUMBER, match.start(), match.end(), True)
    for match in _PLUS_81.finditer(work):
        groups = _DIGITS.findall(match["chain"])
        if not groups[0].startswith("0"):
            groups[0] = "0" + groups[0]
        if _is_phone(groups):
            claim(PiiKind.PHONE, match.start(), match.end(), True)
    for kind, start, end, certain in _number_spans(work):
        if start > 0 and work[start - 1] == "(" and ")" in work[start:end]:
            start -= 1
        claim(kind, start, end, certain)

    return sorted(
        (
            Finding(kind, origin[start], origin[end - 1] + 1, certain)
            for kind, start, end, certain in raw
        ),
        key=lambda finding: finding.start,
    )


def redact(text: str) -> Redacted:
    """Replace the personal identifiers in a text with placeholders.

    Args:
        text (:obj:`str`): Any text, as the resident wrote it.

    Returns:
        :class:`Redacted`: The original text with each :class:`Finding` of
        :func:`find_pii` replaced by its placeholder, and the kinds that were replaced.
    """
    findings = find_pii(text)
    pieces: list[str] = []
    position = 0
    for finding in findings:
        pieces += [text[position : finding.start], _PLACEHOLDERS[PiiKind(finding.kind)]]
        position = finding.end
    pieces.append(text[position:])
    return Redacted("".join(pieces), frozenset(f.kind for f in findings))


def contains_sensitive_id(text: str) -> bool:
    """Tell whether a text holds a My Number or a residence card number.

    These are the identifiers for which the resident is warned; a probable My Number (a
    12-digit number whose check digit does not match) counts too.

    Args:
        text (:obj:`str`): Any text, as the resident wrote it.

    Returns:
        :obj:`bool`: :obj:`True` if :func:`find_pii` reports a ``my_number`` or a
        ``card_number``.
    """
    return any(f.kind in _SENSITIVE for f in find_pii(text))


_PLACEHOLDER_PATTERN = re.compile("|".join(re.escape(p) for p in _PLACEHOLDERS.values()))


def strip_placeholders(text: str) -> str:
    """The text without the placeholders that :func:`redact` put in, so that the words
    of a placeholder ("card number") are never mistaken for the resident's words."""
    return _PLACEHOLDER_PATTERN.sub(" ", text)
