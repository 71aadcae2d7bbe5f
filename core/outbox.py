"""Platform-neutral delivery: claim due outbox rows, hand them to the channel's
:class:`Sender`, record the result. Reminders and broadcasts both go through here.

A row is handed to a platform at most once: it is marked ``sending`` before the
platform is called, and a worker that dies in that moment leaves it to
:func:`core.store.outbox.resolve_interrupted`, which repeats it only where the platform
drops repeats itself.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from core.clock import Clock
from core.messages import Reply
from core.notices import Notices
from core.store import outbox, users
from core.store.db import Database
from core.store.models import OutboxStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(hours=1)


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  #: try again later (rate limit, server error, timeout)
    GONE = "gone"  #: the resident blocked the bot or no longer exists
    FAILED = "failed"  #: the platform refused this message for good


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    retry_after: float | None = None
    error: str | None = None


class Sender(Protocol):
    """Sends rendered replies to one resident on one channel."""

    channel: str
    #: True when the platform drops a repeat carrying the same ``key``.
    idempotent: bool

    async def send(self, recipient: str, replies: Sequence[Reply], *, key: str) -> SendResult: ...


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Delivery:
    """The delivery job: run :meth:`run_once` every few seconds."""

    def __init__(
        self,
        db: Database,
        senders: Mapping[str, Sender],
        notices: Notices,
        clock: Clock,
        *,
        worker_id: str | None = None,
        batch_size: int = 50,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.db = db
        self.senders = dict(senders)
        self.notices = notices
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.lease = lease

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many rows were handled."""
        if not self.senders:
            return 0
        now = self.clock.now()
        idempotent = [name for name, sender in self.senders.items() if sender.idempotent]
        async with self.db.session() as session:
            await outbox.resolve_interrupted(session, now, idempotent)
        async with self.db.session() as session:
            ids = await outbox.claim_due(
                session,
                now=now,
                worker=self.worker_id,
                limit=self.batch_size,
                lease=self.lease,
                channels=list(self.senders),
            )
        for row_id in ids:
            await self._deliver(row_id)
        return len(ids)

    async def _deliver(self, row_id: int) -> None:
        now = self.clock.now()
        async with self.db.session() as session:
            (row,) = await outbox.get_rows(session, [row_id])
            rendered = await self.notices.render(session, row, now)
            if rendered.skip_reason is not None:
                await outbox.finish(
                    session,
                    row_id,
                    self.worker_id,
                    status=OutboxStatus.DROPPED,
                    now=now,
                    error=rendered.skip_reason,
                )
                return
            if not await outbox.mark_sending(session, row_id, self.worker_id):
                return
        sender = self.senders[row.channel]
        try:
            result = await sender.send(rendered.recipient, rendered.replies, key=f"outbox:{row_id}")
        except Exception as error:  # a sender bug must not stop the other deliveries
            log.exception("sender %s crashed on outbox row %s", row.channel, row_id)
            result = SendResult(Outcome.RETRY, error=type(error).__name__)
        await self._record(row_id, row.attempts + 1, result)

    async def _record(self, row_id: int, attempts: int, result: SendResult) -> None:
        now = self.clock.now()
        async with self.db.session() as session:
            if result.outcome == Outcome.SENT:
                await outbox.finish(
                    session, row_id, self.worker_id, status=OutboxStatus.SENT, now=now
                )
            elif result.outcome == Outcome.RETRY and attempts < MAX_ATTEMPTS:
                await outbox.finish(
                    session,
                    row_id,
                    self.worker_id,
                    status=OutboxStatus.PENDING,
                    now=now,
                    error=result.error,
                    retry_at=now + backoff(attempts, result.retry_after),
                )
            else:
                await outbox.finish(
                    session,
                    row_id,
                    self.worker_id,
                    status=OutboxStatus.FAILED,
                    now=now,
                    error=result.error or result.outcome,
                )
                if result.outcome == Outcome.GONE:
                    (row,) = await outbox.get_rows(session, [row_id])
                    user = await users.get_by_id(session, row.user_id)
                    if user is not None:
                        await users.mark_inactive(session, user, now, "blocked")


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Exponential backoff from 5 s, capped at an hour, never shorter than asked."""
    wait = min(timedelta(seconds=5 * 2 ** (attempts - 1)), MAX_BACKOFF)
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait
