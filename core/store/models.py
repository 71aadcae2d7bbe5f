"""The tables. Kept to what a reminder or an answer needs: never a name, an address,
a My Number or a card number (see DESIGN.md "Storage")."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel


class User(SQLModel, table=True):
    """A resident on one channel."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "platform_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    platform_id: str = Field(max_length=64)
    language: str | None = Field(default=None, max_length=16)
    language_chosen: bool = False  #: False: ``language`` was only detected from their text
    consent_at: datetime | None = None
    updates_opt_in: bool | None = None  #: None: never asked
    active: bool = True  #: False once the resident blocked or unfollowed the bot
    inactive_since: datetime | None = None
    reminder_hour: int = 9
    timezone: str = Field(default="Asia/Tokyo", max_length=64)
    created_at: datetime


class ExpiryStatus(StrEnum):
    ACTIVE = "active"
    APPLIED = "applied"  #: an application is pending: the ladder is paused
    STOPPED = "stopped"  #: the resident asked for no more reminders for this date


class Expiry(SQLModel, table=True):
    """A document expiry date that a resident chose to give Kigen."""

    __tablename__ = "expiries"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: str = Field(max_length=32)
    expires_on: date
    status: str = Field(default=ExpiryStatus.ACTIVE, max_length=16)
    created_at: datetime


class OutboxStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"  #: the platform refused it for good; ``last_error`` says why
    DROPPED = "dropped"  #: no longer worth sending (stale, user gone); ``last_error`` says why


class OutboxKind(StrEnum):
    REMINDER = "reminder"
    BROADCAST = "broadcast"
    REPLY = "reply"  #: an answer the platform did not take at once (an outage): sent later


class OutboxMessage(SQLModel, table=True):
    """A message waiting to be delivered, or the record that it was."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("expiry_id", "about_date", "step"),
        Index("ix_outbox_status_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: The resident of a reminder; None for a broadcast batch (see ``batch_id``).
    user_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )
    batch_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("broadcast_batches.id", ondelete="CASCADE"),
            nullable=True,
            unique=True,
        ),
    )
    channel: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    expiry_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("expiries.id", ondelete="CASCADE"), nullable=True),
    )
    step: str | None = Field(default=None, max_length=16)
    #: The expiry date a reminder is about; a renewal starts a new ladder.
    about_date: date | None = None
    due_at: datetime
    stale_at: datetime | None = None  #: after this moment sending makes no sense
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=300)
    sent_at: datetime | None = None
    #: The replies of a ``reply`` row (:meth:`core.messages.Reply.to_dict`); emptied once
    #: the row is settled, so an answer is kept no longer than it takes to deliver it.
    body: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )


class DialogueState(SQLModel, table=True):
    """Where a resident is in a multi-step flow (adding a date, confirming /forget)."""

    __tablename__ = "dialogue_states"

    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    flow: str = Field(max_length=32)
    step: str = Field(max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class ProcessedEvent(SQLModel, table=True):
    """An inbound platform event already handled (webhook redeliveries are ignored)."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("channel", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    event_id: str = Field(max_length=64)
    created_at: datetime = Field(index=True)


class BroadcastStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class Broadcast(SQLModel, table=True):
    """A policy update an operator sends to residents who turned updates on."""

    __tablename__ = "broadcasts"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    #: Text per language code; residents of other languages get the English text or
    #: nothing, as ``fallback`` says.
    texts: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fallback: str = Field(default="english", max_length=16)
    link: str | None = Field(default=None, max_length=500)
    source: str | None = Field(default=None, max_length=500)
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=BroadcastStatus.DRAFT, max_length=16)
    send_at: datetime | None = None
    created_by: str = Field(max_length=64)
    approved_by: str | None = Field(default=None, max_length=64)
    created_at: datetime
    approved_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: Materialisation progress: residents with ids up to this one are queued.
    queued_until_user: int = 0
    audience_done: bool = False


class BroadcastBatch(SQLModel, table=True):
    """Residents of one broadcast who get the same message in one platform call (up to
    500 on LINE, one elsewhere); its outbox row carries the delivery."""

    __tablename__ = "broadcast_batches"

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("broadcasts.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    channel: str = Field(max_length=16)
    language: str = Field(max_length=16)


class BroadcastRecipient(SQLModel, table=True):
    """A resident queued in a broadcast batch: what makes a broadcast exactly once.

    No foreign keys: checking them was most of the cost of queueing a broadcast. A
    resident's rows are deleted with them (:func:`core.store.users.delete_user`); batches
    are never deleted.
    """

    __tablename__ = "broadcast_recipients"

    batch_id: int = Field(sa_column=Column(Integer, primary_key=True))
    user_id: int = Field(sa_column=Column(Integer, primary_key=True, index=True))


class Operator(SQLModel, table=True):
    """Someone who runs the console: a city office or NPO staff member."""

    __tablename__ = "operators"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=200)
    failed_logins: int = 0
    locked_until: datetime | None = None
    #: Raised at logout and password change: older session cookies stop working.
    session_version: int = 0
    #: The operator's own chat, for test sends.
    chat_channel: str | None = Field(default=None, max_length=16)
    chat_user_id: str | None = Field(default=None, max_length=64)
    created_at: datetime


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    operator: str = Field(max_length=64)
    action: str = Field(max_length=64)
    target: str | None = Field(default=None, max_length=200)
    detail: str | None = Field(default=None, max_length=500)


class QuestionStat(SQLModel, table=True):
    """How often a question was answered (by entry) or not (by redacted text), per day."""

    __tablename__ = "question_stats"
    __table_args__ = (UniqueConstraint("day", "outcome", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    outcome: str = Field(max_length=16)  #: answered, clarified, unanswered
    key: str = Field(max_length=200)  #: the entry id, or the redacted question
    count: int = 0
