"""``kigen faq check``: what counts as a number of an answer."""

from __future__ import annotations

from core.knowledge_check import numbers


def test_dates_phone_numbers_and_yen_amounts_are_read_whole():
    text = "From 14 June 2026 call 0120-0178-27 or 0570-013904; the fee is ¥6,000 (¥5,500 online)."
    assert numbers(text) == {"14", "6", "2026", "0120-0178-27", "0570-013904", "6000", "5500"}


def test_the_verb_may_is_not_a_month():
    assert numbers("You may stay for 2 months.") == {"2"}
    assert numbers("until May 31, 2027") == {"5", "31", "2027"}


def test_the_same_facts_in_japanese_give_the_same_numbers():
    english = "Apply from 3 months before, by 14 June 2026, at 9:30-17:00."
    japanese = "2026年6月14日までに、3か月前から、9:30～17:00に申請します。"
    assert numbers(english) == numbers(japanese)
