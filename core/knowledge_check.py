"""``kigen faq check``: validate the knowledge-base content.

Errors (the check fails): an entry missing in a language, or with no title, answer or
questions; an answer whose numbers (phone numbers, yen amounts, dates, counts) differ from
the English answer's; a source that is not an https URL; a missing check date; a related
entry that does not exist. Warnings: a check date older than 180 days, an answer longer
than 700 characters, a title longer than 20 characters (too long for a LINE button).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from core.i18n import LANGUAGES

STALE_AFTER_DAYS = 180
MAX_ANSWER = 700
MAX_TITLE = 20

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_WORDS = "|".join(sorted(_MONTHS, key=len, reverse=True))
#: A month name only counts inside a date ("14 June 2026", "June 14"), so that the verb
#: "may" is not read as May.
_MONTH_NAME = re.compile(rf"(?<=\d )({_MONTH_WORDS})\b|\b({_MONTH_WORDS})(?= \d)", re.I)
_PHONE = re.compile(r"(?<![\d,.])0\d{1,4}(?:-\d{1,6}){1,3}(?![\d])")
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+|\d+")


def numbers(text: str) -> set[str]:
    """The numbers an answer states: phone numbers whole, ``6,000`` as ``6000``, month
    names as their number (English dates), leading zeros dropped."""
    text = unicodedata.normalize("NFKC", text)
    found = {match.group(0) for match in _PHONE.finditer(text)}
    text = _PHONE.sub(" ", text)
    found |= {str(_MONTHS[(m.group(1) or m.group(2)).lower()]) for m in _MONTH_NAME.finditer(text)}
    found |= {str(int(m.group(0).replace(",", ""))) for m in _NUMBER.finditer(text)}
    return found


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check(locales_dir: Path, languages: tuple[str, ...], *, today: date) -> Report:
    """Check the metadata and every language's content against the English master."""
    report = Report()
    meta = yaml.safe_load((locales_dir / "faq.yaml").read_text(encoding="utf-8"))["entries"]
    ids = [item.get("id") for item in meta]
    if len(ids) != len(set(ids)):
        report.errors.append("duplicate entry ids in faq.yaml")
    for item in meta:
        _check_meta(item, set(ids), today, report)
    texts = {}
    for lang in languages:
        path = locales_dir / LANGUAGES[lang].directory / "faq.yaml"
        if not path.exists():
            report.errors.append(f"{lang}: {path} is missing")
            continue
        texts[lang] = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("entries") or {}
    english = texts.get("en", {})
    for lang, entries in texts.items():
        for entry_id in ids:
            entry = entries.get(entry_id)
            if not entry:
                report.errors.append(f"{lang}/{entry_id}: missing")
                continue
            _check_text(lang, entry_id, entry, english.get(entry_id), report)
        for extra in set(entries) - set(ids):
            report.errors.append(f"{lang}/{extra}: not in faq.yaml")
    return report


def _check_meta(item: dict, ids: set, today: date, report: Report) -> None:
    entry_id = item.get("id")
    for source in item.get("sources") or [None]:
        if not (isinstance(source, str) and source.startswith("https://")):
            report.errors.append(f"{entry_id}: source {source!r} is not an https URL")
    checked = item.get("checked")
    if not isinstance(checked, date):
        report.errors.append(f"{entry_id}: check date missing or not a date")
    elif (today - checked).days > STALE_AFTER_DAYS:
        report.warnings.append(f"{entry_id}: facts last checked {checked}, over 180 days ago")
    for related in item.get("related") or ():
        if related not in ids:
            report.errors.append(f"{entry_id}: related entry {related!r} does not exist")


def _check_text(
    lang: str, entry_id: str, entry: dict, english: dict | None, report: Report
) -> None:
    where = f"{lang}/{entry_id}"
    answer, title = str(entry.get("answer") or ""), str(entry.get("title") or "")
    if not answer.strip() or not title.strip():
        report.errors.append(f"{where}: title or answer is empty")
    if len(entry.get("questions") or ()) < 3:
        report.errors.append(f"{where}: fewer than 3 question phrasings")
    if len(answer) > MAX_ANSWER:
        report.warnings.append(f"{where}: answer has {len(answer)} characters (> {MAX_ANSWER})")
    if len(title) > MAX_TITLE:
        report.warnings.append(f"{where}: title has {len(title)} characters (> {MAX_TITLE})")
    if english is not None and lang != "en":
        expected, found = numbers(str(english.get("answer", ""))), numbers(answer)
        if expected != found:
            missing, extra = sorted(expected - found), sorted(found - expected)
            report.errors.append(
                f"{where}: numbers differ from English: missing {missing}, extra {extra}"
            )
