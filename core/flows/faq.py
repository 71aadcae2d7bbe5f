"""Answering questions from the knowledge base, and saying so when there is no answer."""

from __future__ import annotations

import re

from core.flows import help as help_flow
from core.flows.context import Context
from core.i18n import N_
from core.knowledge import Verdict
from core.messages import Choice, Reply
from core.smalltalk import classify

_DIGITS = re.compile(r"\d+")
_TOPICS = {
    "specified_card": N_("Specified card"),
    "residence": N_("Residence and visa"),
    "my_number": N_("My Number Card"),
    "insurance": N_("Health insurance"),
    "duties": N_("Moving and duties"),
    "helplines": N_("Helplines"),
}
_IMMIGRATION_LINE = N_(
    "For questions about your status of residence, call the Immigration Information "
    "Center: 0570-013904 (from IP phones or abroad 03-5796-7112), weekdays 8:30-17:15, "
    "in many languages."
)
_MY_NUMBER_LINE = N_(
    "For questions about the My Number Card, call the My Number foreign-language call "
    "centre: 0120-0178-26 (free), weekdays 9:30-20:00, weekends 9:30-17:30."
)
_INSURER_LINE = N_(
    "For health insurance, ask your insurer: the National Health Insurance counter of "
    "your city office, or your employer's health insurance."
)
_HELPLINES = {
    "specified_card": (_IMMIGRATION_LINE, _MY_NUMBER_LINE),
    "residence": (_IMMIGRATION_LINE,),
    "duties": (_IMMIGRATION_LINE,),
    "my_number": (_MY_NUMBER_LINE,),
    "insurance": (_INSURER_LINE, _MY_NUMBER_LINE),
}


def topic_choices(ctx: Context) -> list[Choice]:
    return [
        Choice(f"topic:{topic}", ctx.t.gettext(_TOPICS.get(topic, topic)))
        for topic in ctx.kb.topics()
    ]


def _entry_choices(ctx: Context, entry_ids: list[str] | tuple[str, ...]) -> list[Choice]:
    return [
        Choice(f"faq:{i}", ctx.kb.text(i, ctx.lang).title) for i in entry_ids if i in ctx.kb.meta
    ]


async def ask(ctx: Context, question: str) -> list[Reply]:
    """Answer a typed question."""
    _ = ctx.t.gettext
    small_talk = classify(question)
    if small_talk == "greeting":
        text = _(
            "Hello! Ask me about the residence card, the My Number Card or health insurance, "
            "or choose from the menu."
        )
        return [ctx.reply(text, "greeting", help_flow.menu_choices(ctx))]
    if small_talk == "thanks":
        return [ctx.reply(_("You are welcome! Ask me again at any time."), "thanks")]
    match = ctx.kb.match(question)
    if match.verdict == Verdict.ANSWER:
        ctx.tally.add(ctx.today, "answered", match.candidates[0][0])
        return await answer(ctx, match.candidates[0][0])
    # Counted for operators without a single digit: no number a resident typed is kept.
    asked = _DIGITS.sub("#", " ".join(question.split()))[:200]
    if match.verdict == Verdict.CLARIFY:
        ctx.tally.add(ctx.today, "clarified", asked)
        entry_ids = [entry_id for entry_id, _score in match.candidates]
        return [
            ctx.reply(_("Did you mean one of these?"), "clarify", _entry_choices(ctx, entry_ids))
        ]
    ctx.tally.add(ctx.today, "unanswered", asked)
    return [fallback(ctx, match.topic)]


async def answer(ctx: Context, entry_id: str) -> list[Reply]:
    """The answer of one entry, with its source, the date checked and related entries."""
    _ = ctx.t.gettext
    meta = ctx.kb.meta.get(entry_id)
    if meta is None:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    source = _("Source: {sources} (checked {date})").format(
        sources=" ".join(meta.sources), date=ctx.t.format_date(meta.checked)
    )
    text = f"{ctx.kb.text(entry_id, ctx.lang).answer}\n\n{source}"
    return [ctx.reply(text, f"faq:{entry_id}", _entry_choices(ctx, meta.related))]


def fallback(ctx: Context, topic: str | None) -> Reply:
    """No answer: say so, give the helpline for the topic, and offer the topics."""
    _ = ctx.t.gettext
    lines = _HELPLINES.get(topic or "", (_IMMIGRATION_LINE, _MY_NUMBER_LINE))
    text = "\n\n".join(
        [
            _("Sorry, I do not have a reliable answer to that."),
            *(_(line) for line in lines),
            _("Or choose a topic:"),
        ]
    )
    return ctx.reply(text, "fallback", topic_choices(ctx))


async def show_topic(ctx: Context, topic: str) -> list[Reply]:
    _ = ctx.t.gettext
    entry_ids = ctx.kb.entries_in(topic)
    if not entry_ids:
        return [ctx.reply(_("That button is no longer valid."), "error:choice")]
    name = _(_TOPICS.get(topic, topic))
    return [
        ctx.reply(
            _("{topic}: what would you like to know?").format(topic=name),
            f"topic:{topic}",
            _entry_choices(ctx, entry_ids),
        )
    ]


async def topics(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    return [ctx.reply(_("Choose a topic:"), "topics", topic_choices(ctx))]
