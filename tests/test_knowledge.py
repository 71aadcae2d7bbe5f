"""The knowledge base and the matcher: content loads, questions find their entries in
every language, off-topic questions are refused, and the fallback gives the right line."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from core.config import REPO_ROOT
from core.i18n import SUPPORTED
from core.knowledge import KnowledgeBase, Verdict
from core.knowledge_check import check
from tests.helpers import Chat, choice_ids, intents

DEV_SET = REPO_ROOT.parent / "shared" / "eval" / "faq_dev.jsonl"
OWN_SET = REPO_ROOT / "tests" / "data" / "faq_questions.jsonl"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(REPO_ROOT / "locales", SUPPORTED)


def accuracy(kb: KnowledgeBase, path: Path) -> tuple[float, dict[str, float], int, int]:
    by_language: dict[str, list[bool]] = defaultdict(list)
    refused = off_topic = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        question = json.loads(line)
        match = kb.match(question["text"])
        if question["topic"] is None:
            off_topic += 1
            refused += match.verdict != Verdict.ANSWER
            by_language[question["lang"]].append(match.verdict != Verdict.ANSWER)
        else:
            by_language[question["lang"]].append(
                match.verdict == Verdict.ANSWER and match.best == question["topic"]
            )
    every = [ok for oks in by_language.values() for ok in oks]
    return (
        sum(every) / len(every),
        {k: sum(v) / len(v) for k, v in by_language.items()},
        refused,
        off_topic,
    )


def test_the_content_passes_its_own_check():
    from datetime import date

    report = check(REPO_ROOT / "locales", SUPPORTED, today=date(2026, 11, 25))
    assert report.errors == []
    assert len(KnowledgeBase.read(REPO_ROOT / "locales", ("en",)).meta) >= 40


@pytest.mark.skipif(not DEV_SET.exists(), reason="../shared/eval/faq_dev.jsonl not found")
def test_the_public_questions_find_their_entries(kb):
    overall, by_language, refused, off_topic = accuracy(kb, DEV_SET)
    assert overall >= 0.95, by_language
    assert min(by_language.values()) >= 0.85, by_language
    assert refused == off_topic


def test_our_own_questions_in_every_language_find_their_entries(kb):
    """A held-out set (tests/data) written without looking at the content: a floor that
    catches regressions, not a target to tune to."""
    overall, by_language, refused, off_topic = accuracy(kb, OWN_SET)
    assert overall >= 0.75, by_language
    assert min(by_language.values()) >= 0.6, by_language
    assert refused >= 0.85 * off_topic


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("在留カードの更新はいつからできますか", "ja"),
        ("在留卡什么时候可以更新", "zh-Hans"),
        ("在留カード怎么更新", "zh-Hans"),
        ("재류카드 갱신은 언제부터 가능한가요", "ko"),
        ("Khi nào tôi có thể gia hạn thẻ lưu trú?", "vi"),
        ("Quando posso renovar meu cartão de residência?", "pt-BR"),
        ("¿Cuándo puedo renovar mi tarjeta de residencia?", "es"),
        ("Kapan saya bisa memperpanjang kartu residence?", "id"),
        ("Kailan po pwede mag-renew ng residence card ko?", "fil"),
        ("บัตรผู้พำนักต่ออายุได้เมื่อไหร่", "th"),
        ("रेसिडेन्स कार्ड कहिले नवीकरण गर्न सकिन्छ?", "ne"),
        ("နေထိုင်ခွင့်ကတ် ဘယ်တော့ သက်တမ်းတိုးလို့ရလဲ", "my"),
    ],
)
def test_the_language_of_a_question_is_detected(kb, text, language):
    assert kb.detector.detect(text).language == language


async def test_greetings_are_not_questions_and_off_topic_gets_the_helplines(chat):
    assert intents(await chat.say("hello!")) == ["greeting"]
    assert intents(await chat.say("thank you")) == ["thanks"]
    (reply,) = await chat.say("Who won the World Cup?")
    assert reply.intent == "fallback"
    assert "0570-013904" in reply.text and "0120-0178-26" in reply.text
    assert "topic:residence" in choice_ids([reply])


async def test_the_fallback_names_the_helpline_of_the_topic(chat):
    from core.flows.context import Context
    from core.flows.faq import fallback

    ctx = Context(
        session=None,
        user=None,
        t=chat.conversation.catalogs.translator("en"),
        now=None,  # type: ignore[arg-type]
        kb=chat.conversation.kb,
        catalogs=chat.conversation.catalogs,
        settings=chat.conversation.settings,
        tally=chat.conversation.tally,
    )
    assert "0120-0178-26" in fallback(ctx, "my_number").text
    assert "0570-013904" not in fallback(ctx, "my_number").text
    assert "0570-013904" in fallback(ctx, "residence").text


async def test_an_answer_carries_its_source_check_date_and_related_entries(chat, kigen):
    (reply,) = await chat.say("How many days do I have to report my new address?")
    meta = kigen.kb.meta["move_report"]
    assert reply.intent == "faq:move_report"
    assert meta.sources[0] in reply.text and "November 20, 2026" in reply.text
    assert [c for c in choice_ids([reply])] == [f"faq:{i}" for i in meta.related]


async def test_a_chosen_language_wins_over_detection(chat):
    await chat.follow()
    await chat.press("lang:vi")
    (reply,) = await chat.say("How many days do I have to report my new address?")
    assert reply.language == "vi" and reply.intent == "faq:move_report"


async def test_short_mixed_text_does_not_flip_the_language(chat):
    (first,) = await chat.say("Tôi chuyển nhà thì phải báo trong bao nhiêu ngày?")
    assert first.language == "vi"
    replies = await chat.say("ok zairyu card")
    assert all(reply.language == "vi" for reply in replies)


async def test_unanswered_questions_are_counted_redacted(chat, kigen):
    from sqlalchemy import select

    from core.store.models import QuestionStat

    await chat.say("recommend a ramen shop, my phone is 090-1234-5678")
    await chat.say("recommend a ramen shop, my phone is 090-1234-5678")
    assert await kigen.conversation.tally.flush(kigen.db) == 1
    async with kigen.db.session() as session:
        keys = (
            (
                await session.execute(
                    select(QuestionStat.key).where(QuestionStat.outcome == "unanswered")
                )
            )
            .scalars()
            .all()
        )
    assert keys and all("1234" not in key for key in keys)


@pytest.mark.parametrize(("text", "language"), [("hi", "en"), ("ok", "en"), ("こんにちは", "ja")])
async def test_a_word_or_two_does_not_pick_a_language_but_kana_does(kigen, text, language):
    replies = await Chat(kigen.conversation, user=f"new-{text}").say(text)
    assert replies[0].language.startswith(language), replies[0].language
