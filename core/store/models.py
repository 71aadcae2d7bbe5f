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


class OutboxMessage(SQLModel, table=True):
    """A message waiting to be delivered, or the record that it was."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("expiry_id", "about_date", "step"),
        Index("ix_outbox_status_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
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
