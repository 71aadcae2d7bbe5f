"""The conversation: one :class:`~core.messages.Incoming` in, a list of replies out.

:meth:`Conversation.handle` runs one turn in a database transaction: find or create the
resident, pick the language, route the input to a flow (or to the FAQ when no flow is
waiting for it) and remember where the dialogue stands.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core import metrics, privacy
from core import reminders as reminders_plan
from core.batching import Batcher
from core.clock import Clock
from core.config import Settings
from core.flood import FloodGuard
from core.flows import faq, onboarding, reminders
from core.flows import help as help_flow
from core.flows import privacy as privacy_flow
from core.flows import settings as settings_flow
from core.flows.context import Context
from core.i18n import DEFAULT_LANGUAGE, Catalogs, negotiate
from core.keyed_lock import KeyedLock
from core.knowledge import KnowledgeBase
from core.messages import Event, Incoming, Reply, clean_text
from core.question_tally import QuestionTally
from core.store import events, outbox, turn_lock, users
from core.store.db import Database
from core.store.models import DialogueState, User
from core.store.turn_lock import TurnKey
from core.textnorm import is_unspaced, normalise

log = logging.getLogger(__name__)

#: Longer messages are refused with an explanation instead of being processed.
MAX_TEXT_LENGTH = 1000
#: A detected language replaces an earlier detected one only with this much confidence
#: and text, so that a short or mixed message does not flip the conversation.
SWITCH_CONFIDENCE = 0.5
SWITCH_MIN_LENGTH = 12
#: An answer the platform could not take is still sent this long after it was given.
REPLY_STALE_AFTER = timedelta(days=1)
#: The most turns taken into one transaction. One such transaction runs at a time: with a
#: second beside it, each was smaller and a worker answered fewer webhooks (401 against
#: 450 events/s on PostgreSQL, bench/webhook.py); SQLite runs one writer at a time anyway.
MAX_BATCH = 64
#: Seconds a turn waits for its resident's lock (held by a turn in another replica, which
#: takes milliseconds) before its transaction fails: in a batch, briefly, since every turn
#: of the process waits with it (the batch's turns then run again alone, even a batch of
#: one); alone, longer.
LOCK_WAIT_IN_BATCH = 0.5
LOCK_WAIT_ALONE = 5.0
SENSITIVE_KINDS = frozenset({privacy.PiiKind.MY_NUMBER, privacy.PiiKind.CARD_NUMBER})

Handler = Callable[[Context], Awaitable[list[Reply]]]
ChoiceHandler = Callable[[Context, str], Awaitable[list[Reply]]]

COMMANDS: dict[str, Handler] = {
    "help": help_flow.menu,
    "remind": reminders.start_add,
    "list": reminders.show_list,
    "language": onboarding.ask_language,
    "updates": settings_flow.updates_status,
    "mydata": privacy_flow.export,
    "forget": privacy_flow.ask_forget,
    "privacy": privacy_flow.notice,
    "topics": faq.topics,
    "time": settings_flow.ask_hour,
    "timezone": settings_flow.ask_zone,
}

MENU: dict[str, Handler] = {
    "add": reminders.start_add,
    "list": reminders.show_list,
    "topics": faq.topics,
    "language": onboarding.ask_language,
    "updates": settings_flow.updates_status,
    "privacy": privacy_flow.notice,
    "help": help_flow.menu,
}


async def _menu(ctx: Context, value: str) -> list[Reply]:
    handler = MENU.get(value)
    return await handler(ctx) if handler else await _stale_choice(ctx, value)


async def _picked_date(ctx: Context, value: str) -> list[Reply]:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return await _stale_choice(ctx, value)
    return await _date(ctx, day)


async def _date(ctx: Context, day: date) -> list[Reply]:
    if ctx.step != "date":
        return await _stale_choice(ctx, day.isoformat())
    return await reminders.on_date(ctx, day)


async def _stale_choice(ctx: Context, _value: str) -> list[Reply]:
    return [ctx.reply(ctx.t.gettext("That button is no longer valid."), "error:choice")]


CHOICES: dict[str, ChoiceHandler] = {
    "lang": onboarding.choose_language,
    "menu": _menu,
    "kind": reminders.choose_kind,
    "consent": reminders.answer_consent,
    "confirm": reminders.confirm,
    "date": _picked_date,
    "renew": reminders.start_renew,
    "del": reminders.delete,
    "snooze": reminders.snooze,
    "stop": reminders.stop,
    "cal": reminders.calendar_file,
    "applied": reminders.applied,
    "updates": settings_flow.set_updates,
    "hour": settings_flow.set_hour,
    "tz": settings_flow.set_zone,
    "forget": privacy_flow.forget,
    "faq": faq.answer,
    "topic": faq.show_topic,
}

#: ``/start <payload>`` deep links.
START_PAYLOADS: dict[str, Handler] = {
    "remind": reminders.start_add,
    "list": reminders.show_list,
    "language": onboarding.ask_language,
}


@dataclass(frozen=True)
class _Turn:
    incoming: Incoming
    event_id: str | None
    slow_down: bool  #: the resident is sending too fast: say so and do nothing else


@dataclass
class _Plan:
    """A turn whose flow is yet to run."""

    incoming: Incoming
    user: User  #: not stored yet when ``created``
    state: DialogueState | None
    created: bool
    language: str


class Conversation:
    """Kigen's side of every conversation, whatever the channel.

    Turns that arrive while others are running are taken together into one transaction
    (:mod:`core.batching`): under load, a few statements serve many residents' turns."""

    def __init__(
        self,
        db: Database,
        kb: KnowledgeBase,
        catalogs: Catalogs,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.db = db
        self.kb = kb
        self.catalogs = catalogs
        self.settings = settings
        self.clock = clock
        self.flood = FloodGuard(settings.flood_limit_per_minute, 60.0)
        self.tally = QuestionTally()
        self.turns = KeyedLock()
        self.batches: Batcher[_Turn, list[Reply] | None] = Batcher(
            self._run_turns, max_size=MAX_BATCH, abandoned=self._answer_later
        )

    async def first_time(self, channel: str, event_id: str) -> bool:
        """Record an inbound platform event; False when it was handled before (a webhook
        redelivery), so that the adapter drops it."""
        async with self.db.session() as session:
            return await events.first_time(
                session, channel, clean_text(event_id)[:64], self.clock.now()
            )

    async def error_reply(self, channel: str, user_id: str) -> Reply:
        """What to tell a resident when handling their message failed on Kigen's side."""
        async with self.db.session() as session:
            user = await users.get_user(session, channel, user_id)
        t = self.catalogs.translator(user.language if user and user.language else "en")
        text = t.gettext("Sorry, something went wrong on my side. Please try again in a moment.")
        return Reply(text=text, intent="error:internal", language=t.code)

    async def deliver_later(
        self,
        channel: str,
        user_id: str,
        replies: Sequence[Reply],
        *,
        after: timedelta = timedelta(0),
    ) -> None:
        """Queue replies that the platform did not take (an outage, a timeout), to be sent
        ``after`` from now (a platform's Retry-After): the delivery job sends them like a
        reminder, retrying until the platform is back, or drops them once they are a day
        old."""
        if not replies:
            return
        now = self.clock.now()
        async with self.db.session() as session:
            user = await users.get_user(session, channel, user_id)
            if user is None or user.id is None:
                return
            await outbox.add_reply(
                session,
                user_id=user.id,
                channel=channel,
                body=[reply.to_dict() for reply in replies],
                due_at=now + after,
                stale_at=now + REPLY_STALE_AFTER,
            )
        metrics.REPLIES_DEFERRED.labels(channel).inc()

    async def handle(self, incoming: Incoming, *, event_id: str | None = None) -> list[Reply]:
        """Answer one thing a resident did. With the platform's ``event_id``, a repeat of an
        event already handled gets no answer (a webhook redelivery)."""
        incoming = incoming.cleaned()
        metrics.MESSAGES_IN.labels(incoming.channel).inc()
        if self.settings.log_messages and incoming.text:
            log.info("message from %s: %s", incoming.channel, privacy.redact(incoming.text).text)
        flood = "ok"
        if incoming.event is None:
            flood = self.flood.check(f"{incoming.channel}:{incoming.user_id}")
            if flood == "drop":
                return []
        event_id = clean_text(event_id)[:64] if event_id else None
        # One turn at a time per resident (in this process; across processes the turn's
        # transaction takes a lock): their messages are answered in the order they came,
        # and a first contact cannot create them twice.
        turn = _Turn(incoming, event_id, flood == "warn")
        async with self.turns.hold(f"{incoming.channel}:{incoming.user_id}"):
            replies = await self.batches.submit(turn)
            if replies is None:
                # Its batch failed: alone, outside the batches, the turn succeeds or fails
                # on its own, and a lock held elsewhere holds up only this resident.
                (replies,) = await self._in_one_transaction([turn], LOCK_WAIT_ALONE)
        for reply in replies:
            metrics.REPLIES.labels(incoming.channel, metrics.intent_label(reply.intent)).inc()
        return replies

    async def _run_turns(self, turns: Sequence[_Turn]) -> list[list[Reply] | None]:
        """The turns of several residents in one transaction. Should that fail, each turn
        is handed back to run alone (None), so that an error, or a lock that is slow to
        come, is only its own turn's and holds up no other batch."""
        try:
            return list(await self._in_one_transaction(turns, LOCK_WAIT_IN_BATCH))
        except Exception:
            log.warning(
                "a batch of %d turns failed; each runs again alone", len(turns), exc_info=True
            )
            return [None] * len(turns)

    async def _in_one_transaction(
        self, turns: Sequence[_Turn], lock_wait: float
    ) -> list[list[Reply]]:
        """A few statements for all the turns: the locks and events, the residents with
        their dialogue states, the new residents; then what each turn's flow needs. A lock
        that does not come within ``lock_wait`` seconds fails the transaction."""
        counts = QuestionTally()
        async with self.db.session() as session:
            keys = [TurnKey(t.incoming.channel, t.incoming.user_id, t.event_id) for t in turns]
            first_time = await turn_lock.begin(session, keys, self.clock.now(), lock_wait)
            now = self.clock.now()  # the locks may have been a while coming
            known: dict[tuple[str, str], tuple[User, DialogueState | None]] = {}
            for channel in {key.channel for key in keys}:
                ids = [key.platform_id for key in keys if key.channel == channel]
                found = await users.get_users_and_states(session, channel, ids)
                known |= {(channel, platform_id): row for platform_id, row in found.items()}
            plans: list[_Plan | list[Reply]] = []
            for turn, key, first in zip(turns, keys, first_time, strict=True):
                user, state = known.get((key.channel, key.platform_id), (None, None))
                plans.append(await self._prepare(session, turn, user, state, now) if first else [])
            created = [plan.user for plan in plans if isinstance(plan, _Plan) and plan.created]
            stored = iter(await users.add_users(session, created))
            answers = []
            for plan in plans:
                if isinstance(plan, _Plan):
                    if plan.created:
                        plan.user = next(stored)
                    plan = await self._answer(session, plan, now, counts)
                answers.append(plan)
        self.tally.absorb(counts)
        return answers

    async def _answer_later(self, turn: _Turn, replies: list[Reply] | None) -> None:
        """The answer of a turn whose caller left while its batch ran (a webhook request
        cancelled): the turn and its event are stored, so a redelivery would get nothing;
        the answer is sent through the outbox instead. (None: the batch failed and stored
        nothing; a redelivery is handled in full.)"""
        if not replies:
            return
        try:
            await self.deliver_later(turn.incoming.channel, turn.incoming.user_id, replies)
        except Exception:
            log.exception("could not queue the answer of a turn whose caller left")

    async def _prepare(
        self,
        session: AsyncSession,
        turn: _Turn,
        user: User | None,
        state: DialogueState | None,
        now: datetime,
    ) -> _Plan | list[Reply]:
        """What a turn is before its flow runs: the resident (new ones not yet stored) and
        the language; or its whole answer, when there is nothing more to do."""
        incoming = turn.incoming
        if turn.slow_down:
            return [self._slow_down(user)]
        if incoming.event == Event.UNFOLLOW:
            if user is not None:
                await users.mark_inactive(session, user, now, "unfollowed")
            return []
        created = user is None
        if user is None:
            user = users.new_user(incoming.channel, incoming.user_id, now)
        elif not user.active:
            users.reactivate(user)
            await reminders_plan.replan_all(session, user, now)
        return _Plan(incoming, user, state, created, self._language(user, incoming))

    async def _answer(
        self, session: AsyncSession, plan: _Plan, now: datetime, counts: QuestionTally
    ) -> list[Reply]:
        """Route the input to a flow (or to the FAQ when no flow is waiting for it) and
        remember where the dialogue stands; questions are counted in ``counts``."""
        ctx = Context(
            session=session,
            user=plan.user,
            t=self.catalogs.translator(plan.language),
            now=now,
            kb=self.kb,
            catalogs=self.catalogs,
            settings=self.settings,
            tally=counts,
            state=plan.state,
        )
        if plan.state is not None:
            ctx.flow, ctx.step, ctx.data = plan.state.flow, plan.state.step, dict(plan.state.data)
        replies = await self._dispatch(ctx, plan.incoming, plan.created)
        await ctx.save_dialogue()
        return replies

    def _slow_down(self, user: User | None) -> Reply:
        t = self.catalogs.translator(user.language if user and user.language else "en")
        text = t.gettext(
            "You are sending messages very quickly. Please wait a minute, then try again."
        )
        return Reply(text=text, intent="error:flood", language=t.code)

    def _language(self, user: User, incoming: Incoming) -> str:
        """The language to answer in; remembers a detected one on the user."""
        supported = self.catalogs.supported
        if user.language_chosen and user.language in supported:
            return user.language
        language = user.language if user.language in supported else None
        hint = negotiate(incoming.language_hint)
        if incoming.text:
            # A message longer than this is refused anyway; its start tells the language.
            sample = incoming.text[:MAX_TEXT_LENGTH]
            detection = self.kb.detector.detect(sample)
            if detection is not None and detection.language in supported:
                candidate = detection.language
                if hint in supported and hint != candidate and detection.confidence < 0.1:
                    candidate = hint
                # An ideograph or kana says about as much as three Latin letters.
                weight = sum(3 if is_unspaced(c) else 1 for c in normalise(sample))
                long_enough = weight >= SWITCH_MIN_LENGTH
                confident = detection.confidence >= SWITCH_CONFIDENCE and long_enough
                # A word or two in Latin letters ("hi", "ok") says little about a language;
                # a script of its own (kana, Hangul, Thai...) says it at once.
                telling = long_enough or detection.confidence >= 1.0
                if (language is None and telling) or confident:
                    language = candidate
        language = language or (hint if hint in supported else None) or DEFAULT_LANGUAGE
        user.language = language
        return language

    async def _dispatch(self, ctx: Context, incoming: Incoming, created: bool) -> list[Reply]:
        if incoming.event == Event.FOLLOW:
            if created or not ctx.user.language_chosen:
                return await onboarding.greet(ctx)
            return await onboarding.welcome_back(ctx)
        if incoming.event == Event.UNSUPPORTED:
            text = ctx.t.gettext("I can only read text. Please type your question.")
            return [ctx.reply(text, "error:unsupported")]
        if incoming.command is not None:
            return await self._command(ctx, incoming.command, incoming.argument, created)
        if incoming.choice is not None:
            prefix, _, value = incoming.choice.partition(":")
            handler = CHOICES.get(prefix)
            return await (handler or _stale_choice)(ctx, value)
        if incoming.picked_date is not None:
            return await _date(ctx, incoming.picked_date)
        if incoming.text is not None:
            return await self._text(ctx, incoming.text)
        return []

    async def _command(
        self, ctx: Context, command: str, argument: str, created: bool
    ) -> list[Reply]:
        ctx.end()
        if command == "start":
            payload = START_PAYLOADS.get(argument)
            if payload is not None:
                return await payload(ctx)
            if argument.startswith("faq-"):
                return await faq.answer(ctx, argument.removeprefix("faq-").replace("-", "_"))
            if created or not ctx.user.language_chosen:
                return await onboarding.greet(ctx)
            return await help_flow.menu(ctx)
        if command == "cancel":
            return [ctx.reply(ctx.t.gettext("Cancelled."), "cancelled")]
        handler = COMMANDS.get(command)
        if handler is not None:
            return await handler(ctx)
        text = ctx.t.gettext("I do not know the command /{command}.").format(command=command[:32])
        return [ctx.reply(text, "error:command"), *await help_flow.menu(ctx)]

    async def _text(self, ctx: Context, text: str) -> list[Reply]:
        _ = ctx.t.gettext
        if len(text) > MAX_TEXT_LENGTH:
            message = _(
                "That message is too long for me. Please ask in a shorter message "
                "(at most {limit} characters)."
            ).format(limit=MAX_TEXT_LENGTH)
            return [ctx.reply(message, "error:too_long")]
        replies: list[Reply] = []
        redacted = privacy.redact(text)
        if redacted.kinds & SENSITIVE_KINDS:
            warning = _(
                "Please do not send your My Number or your residence card number: I do not "
                "need them, and I have not kept them. Anyone who sees them could misuse them."
            )
            replies.append(ctx.reply(warning, "privacy:warning"))
        text = privacy.strip_placeholders(redacted.text)
        if ctx.step == "date":
            return replies + await reminders.on_date_text(ctx, text)
        if ctx.flow == "settings" and ctx.step == "timezone":
            return replies + await settings_flow.set_zone(ctx, text)
        answers = await faq.ask(ctx, text)
        if replies and not answers[0].intent.startswith("faq:"):
            # What is left around a pasted number is rarely a question: warn only.
            return replies
        return replies + answers
