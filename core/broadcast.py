"""Broadcasts: policy updates that operators send to residents who turned updates on.

Lifecycle: draft → approved → sending → done, or cancelled on the way. A broadcast in
``sending`` is materialised into the outbox in pages of residents (memory stays flat for
any audience); the page cursor is saved with each page, so after a crash it resumes where
it stopped and, because every resident is queued once, nobody gets it twice. The delivery
job sends it like any outbox message.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.store import audit
from core.store import broadcasts as queries
from core.store.db import Database
from core.store.models import Broadcast, BroadcastStatus

#: Residents per platform call: LINE multicast takes 500 user ids; others one chat.
BATCH_SIZES = {"line": 500}
PAGE_SIZE = 20_000
FALLBACKS = ("english", "skip")
ROLES = ("editor", "approver", "admin")


class BroadcastError(ValueError):
    """An action the broadcast's state or the operator's role does not allow."""


@dataclass(frozen=True, slots=True)
class Audience:
    """Who gets a broadcast. Filters combine; updates opt-in is always required."""

    channels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    document_kinds: tuple[str, ...] = ()
    expiry_within_days: int | None = None
    saved_after: str | None = None  #: ISO date
    saved_before: str | None = None

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in values.items()
            if value not in ((), None)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        return cls(
            channels=tuple(data.get("channels") or ()),
            languages=tuple(data.get("languages") or ()),
            document_kinds=tuple(data.get("document_kinds") or ()),
            expiry_within_days=data.get("expiry_within_days"),
            saved_after=data.get("saved_after"),
            saved_before=data.get("saved_before"),
        )


def text_language(broadcast: Broadcast, resident_language: str | None) -> str | None:
    """The language of the text a resident gets, or None when they are skipped: never
    another language than theirs, except English where the operator chose that."""
    if resident_language in broadcast.texts:
        return resident_language
    return fallback_language(broadcast)


def fallback_language(broadcast: Broadcast) -> str | None:
    """The text for residents whose language the broadcast lacks, or None: skip them."""
    return "en" if broadcast.fallback == "english" and "en" in broadcast.texts else None


@dataclass(frozen=True, slots=True)
class AudienceCount:
    matching: int  #: residents the filters select
    reached: int  #: of whom the texts and the fallback rule reach


async def count(session: AsyncSession, broadcast: Broadcast, now: datetime) -> AudienceCount:
    by_language = await queries.count_by_language(session, broadcast.audience, now)
    reached = sum(n for lang, n in by_language.items() if text_language(broadcast, lang))
    return AudienceCount(sum(by_language.values()), reached)


def validate(title: str, texts: dict[str, str], fallback: str, link: str | None) -> None:
    if not title.strip():
        raise BroadcastError("a title is required")
    if not any(text.strip() for text in texts.values()):
        raise BroadcastError("at least one language needs a text")
    if fallback not in FALLBACKS:
        raise BroadcastError(f"fallback must be one of {', '.join(FALLBACKS)}")
    if fallback == "english" and not texts.get("en", "").strip():
        raise BroadcastError("the English fallback needs an English text")
    if link and not link.startswith("https://"):
        raise BroadcastError("the link must be an https:// address")
    if any(len(text) > 2000 for text in texts.values()):
        raise BroadcastError("a text may have at most 2000 characters")


async def create(
    db: Database,
    now: datetime,
    operator: str,
    *,
    title: str,
    texts: dict[str, str],
    fallback: str = "english",
    link: str | None = None,
    source: str | None = None,
    audience: Audience = Audience(),
    send_at: datetime | None = None,
) -> int:
    """Save a draft; returns its id."""
    texts = {lang: text.strip() for lang, text in texts.items() if text.strip()}
    validate(title, texts, fallback, link)
    async with db.session() as session:
        broadcast = Broadcast(
            title=title.strip(),
            texts=texts,
            fallback=fallback,
            link=link or None,
            source=source or None,
            audience=audience.to_dict(),
            send_at=send_at,
            created_by=operator,
            created_at=now,
        )
        session.add(broadcast)
        await session.flush()
        audit.record(session, now, operator, "broadcast.create", f"broadcast {broadcast.id}", title)
        return broadcast.id


async def _get(session: AsyncSession, broadcast_id: int) -> Broadcast:
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    return broadcast


async def approve(
    db: Database, now: datetime, broadcast_id: int, operator: str, role: str, *, two_person: bool
) -> None:
    async with db.session() as session:
        broadcast = await _get(session, broadcast_id)
        if broadcast.status != BroadcastStatus.DRAFT:
            raise BroadcastError(f"only a draft can be approved (this one is {broadcast.status})")
        if role not in ("approver", "admin"):
            raise BroadcastError("approving needs the approver or admin role")
        if two_person and operator == broadcast.created_by:
            raise BroadcastError("a second operator must approve what you wrote")
        broadcast.status, broadcast.approved_by, broadcast.approved_at = (
            BroadcastStatus.APPROVED,
            operator,
            now,
        )
        audit.record(session, now, operator, "broadcast.approve", f"broadcast {broadcast_id}")


async def start(db: Database, now: datetime, broadcast_id: int, operator: str) -> None:
    """Start sending (at ``send_at`` if it is later)."""
    async with db.session() as session:
        broadcast = await _get(session, broadcast_id)
        if broadcast.status != BroadcastStatus.APPROVED:
            raise BroadcastError(
                f"only an approved broadcast can be sent (this one is {broadcast.status})"
            )
        broadcast.status, broadcast.started_at = BroadcastStatus.SENDING, now
        audit.record(session, now, operator, "broadcast.send", f"broadcast {broadcast_id}")


async def cancel(db: Database, now: datetime, broadcast_id: int, operator: str) -> None:
    """Stop what is not yet sent."""
    async with db.session() as session:
        broadcast = await _get(session, broadcast_id)
        if broadcast.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
            raise BroadcastError(f"this broadcast is already {broadcast.status}")
        broadcast.status, broadcast.finished_at = BroadcastStatus.CANCELLED, now
        await queries.drop_pending(session, broadcast_id, "cancelled")
        audit.record(session, now, operator, "broadcast.cancel", f"broadcast {broadcast_id}")


async def test_send(
    db: Database, now: datetime, broadcast_id: int, operator_chat: tuple[str, int], operator: str
) -> None:
    """Queue the broadcast to one resident account: the operator's own chat."""
    channel, user_id = operator_chat
    async with db.session() as session:
        broadcast = await _get(session, broadcast_id)
        language = next(iter(broadcast.texts)) if "en" not in broadcast.texts else "en"
        await queries.add_batches(session, broadcast_id, [(channel, language, [user_id])], now)
        audit.record(session, now, operator, "broadcast.test", f"broadcast {broadcast_id}")


async def materialise(db: Database, now: datetime, *, page_size: int = PAGE_SIZE) -> int:
    """Queue the next pages of every broadcast being sent; mark finished ones done.
    Returns how many residents were queued."""
    queued = 0
    async with db.session() as session:
        sending = [b.id for b in await queries.in_progress(session)]
    for broadcast_id in sending:
        while True:
            page = await _queue_page(db, now, broadcast_id, page_size)
            if page is None:
                break
            queued += page
    return queued


async def _queue_page(db: Database, now: datetime, broadcast_id: int, page_size: int) -> int | None:
    async with db.session() as session:
        # Locked, so that two replicas never queue the same page.
        broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
        if broadcast is None:
            return None
        if broadcast.status != BroadcastStatus.SENDING:
            return None
        if broadcast.send_at is not None and broadcast.send_at > now:
            return None
        if broadcast.audience_done:
            if await queries.unfinished_rows(session, broadcast_id) == 0:
                broadcast.status, broadcast.finished_at = BroadcastStatus.DONE, now
            return None
        last_user, queued = await queries.queue_page(
            session,
            broadcast_id,
            broadcast.audience,
            now,
            after=broadcast.queued_until_user,
            limit=page_size,
            languages=broadcast.texts,
            fallback=fallback_language(broadcast),
            batch_sizes=BATCH_SIZES,
        )
        if last_user is None:
            broadcast.audience_done = True
            return 0
        broadcast.queued_until_user = last_user
        return queued
