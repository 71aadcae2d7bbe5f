"""What an outbox row says when it is delivered: rendered at send time, in the
resident's current language, so a language change or a renewal is never out of date.
(A queued answer is the exception: it is sent as it was given.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.flows.documents import document_name
from core.i18n import N_, Catalogs, Translator
from core.knowledge import KnowledgeBase
from core.messages import Choice, Reply
from core.schedule import DocumentKind
from core.store import broadcasts
from core.store.models import (
    Broadcast,
    BroadcastBatch,
    BroadcastStatus,
    Expiry,
    ExpiryStatus,
    OutboxKind,
    OutboxMessage,
    User,
)

WHAT_TO_DO: dict[DocumentKind, str] = {
    DocumentKind.RESIDENCE_CARD: N_(
        "Apply for an extension of your period of stay at your regional immigration bureau, "
        "or online. Bring your passport, your residence card and a 4×3 cm photo."
    ),
    DocumentKind.SPECIFIED_RESIDENCE_CARD: N_(
        "Apply for an extension of your period of stay at your regional immigration bureau. "
        "Bring your passport, your card, a 4×3 cm photo and, if you know them, your card's PINs."
    ),
    DocumentKind.RESIDENCE_CARD_PR: N_(
        "Renew the card (not your status) at your regional immigration bureau; it is free. "
        "Bring the application form with a 4×3 cm photo, your passport and your card."
    ),
    DocumentKind.SPR_CERTIFICATE: N_(
        "Renew the certificate at your municipal office. Bring the certificate, your "
        "passport if you have one and a 4×3 cm photo."
    ),
    DocumentKind.MY_NUMBER_CARD: N_(
        "Extend your My Number Card at your municipal office; it is free. Bring the card, "
        "your new residence card and your 4-digit PIN."
    ),
    DocumentKind.E_CERTIFICATE: N_(
        "Renew the e-certificate at your municipal office; it is free and cannot be done "
        "online. Bring your My Number Card and know its PINs."
    ),
    DocumentKind.INSURANCE_CERTIFICATE: N_(
        "Your insurer sends a new eligibility certificate without an application. If it has "
        "not arrived, ask your insurer: the city's National Health Insurance counter or your "
        "employer's health insurance."
    ),
}

#: The last line of every broadcast: how to stop them.
BROADCAST_FOOTER = N_(
    "You receive this because policy updates are on. To stop them, send /updates."
)

#: The knowledge-base entry that explains each renewal.
GUIDE_ENTRY: dict[DocumentKind, str] = {
    DocumentKind.RESIDENCE_CARD: "ext_window",
    DocumentKind.SPECIFIED_RESIDENCE_CARD: "ext_window",
    DocumentKind.RESIDENCE_CARD_PR: "pr_card_renewal",
    DocumentKind.SPR_CERTIFICATE: "spr_certificate",
    DocumentKind.MY_NUMBER_CARD: "mnc_after_visa",
    DocumentKind.E_CERTIFICATE: "ecert_renew",
    DocumentKind.INSURANCE_CERTIFICATE: "shikaku_validity",
}

_PERIOD_OF_STAY = {DocumentKind.RESIDENCE_CARD, DocumentKind.SPECIFIED_RESIDENCE_CARD}


@dataclass(frozen=True, slots=True)
class Rendered:
    """What to send for a row and to whom, or why it is no longer worth sending."""

    recipients: list[str] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    skip_reason: str | None = None


class Notices:
    """Renders outbox rows into replies."""

    def __init__(self, catalogs: Catalogs, kb: KnowledgeBase) -> None:
        self.catalogs = catalogs
        self.kb = kb

    async def render_many(
        self, session: AsyncSession, rows: list[OutboxMessage], now: datetime
    ) -> list[Rendered]:
        """Render ``rows``, loading what they need in a few queries rather than per row."""
        users = await _by_id(session, User, {row.user_id for row in rows if row.user_id})
        expiries = await _by_id(session, Expiry, {row.expiry_id for row in rows if row.expiry_id})
        batch_ids = [row.batch_id for row in rows if row.batch_id]
        batches = await _by_id(session, BroadcastBatch, set(batch_ids))
        broadcast_rows = await _by_id(
            session, Broadcast, {b.broadcast_id for b in batches.values()}
        )
        recipients = await broadcasts.batch_recipients(session, batch_ids) if batch_ids else {}
        rendered = []
        for row in rows:
            if row.kind == OutboxKind.BROADCAST:
                batch = batches.get(row.batch_id) if row.batch_id else None
                broadcast = broadcast_rows.get(batch.broadcast_id) if batch else None
                rendered.append(self._broadcast(batch, broadcast, recipients))
            elif row.kind == OutboxKind.REPLY:
                user = users.get(row.user_id) if row.user_id else None
                rendered.append(_reply_of(row, user, now))
            else:
                user = users.get(row.user_id) if row.user_id else None
                expiry = expiries.get(row.expiry_id) if row.expiry_id else None
                rendered.append(self._reminder_of(row, user, expiry, now))
        return rendered

    async def render(self, session: AsyncSession, row: OutboxMessage, now: datetime) -> Rendered:
        (rendered,) = await self.render_many(session, [row], now)
        return rendered

    def _reminder_of(
        self, row: OutboxMessage, user: User | None, expiry: Expiry | None, now: datetime
    ) -> Rendered:
        if user is None or not user.active:
            return Rendered(skip_reason="user gone")
        if row.stale_at is not None and row.stale_at <= now:
            return Rendered(skip_reason="stale")
        if expiry is None:
            return Rendered(skip_reason="expiry deleted")
        if row.about_date is not None and row.about_date != expiry.expires_on:
            return Rendered(skip_reason="expiry renewed")
        if expiry.status == ExpiryStatus.APPLIED and row.step != "mnc_extend":
            return Rendered(skip_reason="application pending")
        t = self.catalogs.translator(user.language or "en")
        today = now.astimezone(ZoneInfo(user.timezone)).date()
        return Rendered([user.platform_id], [user.id], [self._reminder(t, row, expiry, today)])

    def _broadcast(
        self,
        batch: BroadcastBatch | None,
        broadcast: Broadcast | None,
        recipients: dict[int, list[tuple[int, str]]],
    ) -> Rendered:
        if batch is None or broadcast is None:
            return Rendered(skip_reason="broadcast deleted")
        if broadcast.status == BroadcastStatus.CANCELLED:
            return Rendered(skip_reason="cancelled")
        residents = recipients.get(batch.id)
        if not residents:
            return Rendered(skip_reason="no recipient left")
        reply = broadcast_reply(broadcast, self.catalogs.translator(batch.language))
        return Rendered(
            [platform_id for _, platform_id in residents],
            [user_id for user_id, _ in residents],
            [reply],
        )

    def _reminder(self, t: Translator, row: OutboxMessage, expiry: Expiry, today) -> Reply:  # type: ignore[no-untyped-def]
        _ = t.gettext
        kind = DocumentKind(expiry.kind)
        document, day = document_name(t, kind), t.format_date(expiry.expires_on)
        days_left = (expiry.expires_on - today).days
        if row.step == "window":
            head = _("The renewal window for your {document} is open: it expires on {date}.")
        elif row.step == "after":
            head = _(
                "Your {document} expired on {date}. If you have not renewed it yet, act today."
            )
        elif row.step == "mnc_extend":
            head = _(
                "Your {document} expires on {date}. Your My Number Card expires with it: once "
                "your new residence card is issued, extend the My Number Card at your municipal "
                "office. If the decision is still pending, ask there for the special extension "
                "before {date}, showing the card with the 'application pending' stamp."
            )
        else:
            head = t.ngettext(
                "Your {document} expires on {date}: {days} day left.",
                "Your {document} expires on {date}: {days} days left.",
                days_left,
            )
        lines = [head.format(document=document, date=day, days=days_left)]
        if row.step != "mnc_extend":
            lines.append(_(WHAT_TO_DO[kind]))
        if row.step == "window" and kind == DocumentKind.RESIDENCE_CARD:
            lines.append(
                _(
                    "Tip: you can ask for the Specified Residence Card (residence card and My "
                    "Number Card in one) together with the renewal. It is optional."
                )
            )
        choices = [
            Choice(f"renew:{expiry.id}", _("Renewed: new date")),
            Choice(f"snooze:{expiry.id}", _("Remind me in a week")),
            Choice(f"stop:{expiry.id}", _("Stop these reminders")),
        ]
        if kind in _PERIOD_OF_STAY and row.step != "mnc_extend":
            choices.insert(0, Choice(f"applied:{expiry.id}", _("I have applied")))
        guide = GUIDE_ENTRY[kind]
        if guide in self.kb.meta:
            choices.append(Choice(f"faq:{guide}", _("What to do")))
        return Reply(
            text="\n\n".join(lines),
            intent=f"reminder:{row.step.split('-')[0] if row.step else 'due'}",
            language=t.code,
            choices=tuple(choices),
        )


def _reply_of(row: OutboxMessage, user: User | None, now: datetime) -> Rendered:
    """An answer queued because the platform did not take it: sent as it was given."""
    if user is None or not user.active:
        return Rendered(skip_reason="user gone")
    if row.stale_at is not None and row.stale_at <= now:
        return Rendered(skip_reason="stale")
    replies = [Reply.from_dict(data) for data in row.body or ()]
    if not replies:
        return Rendered(skip_reason="nothing to send")
    return Rendered([user.platform_id], [user.id], replies)


async def _by_id(session: AsyncSession, table: type[Any], ids: set[int]) -> dict[int, Any]:
    """Rows of ``table`` by id, in one query. (Kept in a dict: the session's identity map
    holds them only weakly, so looking them up there later could query again.)"""
    if not ids:
        return {}
    result = await session.execute(select(table).where(table.id.in_(ids)))
    return {item.id: item for item in result.scalars()}


def broadcast_reply(broadcast: Broadcast, t: Translator) -> Reply:
    """A broadcast as residents of ``t``'s language read it: the text, the link, the
    source and how to stop updates."""
    parts = [broadcast.texts.get(t.code) or broadcast.texts.get("en", "")]
    if broadcast.link:
        parts.append(broadcast.link)
    if broadcast.source:
        parts.append(t.gettext("Source: {sources}").format(sources=broadcast.source))
    parts.append(t.gettext(BROADCAST_FOOTER))
    return Reply(text="\n\n".join(parts), intent="broadcast", language=t.code)
