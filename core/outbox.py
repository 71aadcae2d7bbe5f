"""Platform-neutral delivery: claim due outbox rows, hand them to the channel's
:class:`Sender`, record the result. Reminders and broadcasts both go through here.

A row is handed to a platform at most once: it is marked ``sending`` before the
platform is called, and a worker that dies in that moment leaves it to
:func:`core.store.outbox.resolve_interrupted`, which repeats it only where the platform
drops repeats itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core import metrics
from core.clock import Clock
from core.leader import Leadership
from core.messages import Reply
from core.notices import Notices
from core.store import outbox, users
from core.store.db import Database
from core.store.models import OutboxKind, OutboxStatus

log = logging.getLogger(__name__)

#: With the backoff below, retries span about 2.4 hours: a platform outage of that long
#: loses nothing.
MAX_ATTEMPTS = 12
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
    #: For a retry after part of the message went out (where repeats arrive): the rest.
    #: A queued answer is retried with only these; other rows are rendered again anyway.
    unsent: Sequence[Reply] | None = None


class Sender(Protocol):
    """Sends rendered replies to residents of one channel."""

    channel: str
    #: True when the platform drops a repeat carrying the same ``key``.
    idempotent: bool
    #: How many residents one call can reach (LINE multicast: 500; elsewhere 1).
    max_recipients: int
    #: How many messages may be on their way at once: enough to keep the platform's rate
    #: while each call waits for its answer. Where the platform does not drop repeats, it
    #: is also how many messages a crash can leave in doubt.
    in_flight: int

    async def send(
        self, recipients: Sequence[str], replies: Sequence[Reply], *, key: str
    ) -> SendResult: ...


def default_worker_id() -> str:
    # With a part of its own per start: a container restarted with the same host name and
    # process id must not take the rows its previous life left mid-send for its own. The
    # host name is cut so that the whole fits the 64 characters of ``claimed_by``.
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Delivery:
    """The delivery job: the scheduler calls :meth:`tick` every second or so.

    Each channel is a lane of its own, so a slow platform never holds up another. A lane
    claims a batch, renders it, and claims and renders the next while the first is being
    sent, with up to the sender's ``in_flight`` messages on their way at once; it goes on
    until nothing is due, so a big broadcast is sent at the platform's pace, not at the
    pace of the job nor of the platform's answers.
    """

    def __init__(
        self,
        db: Database,
        senders: Mapping[str, Sender],
        notices: Notices,
        clock: Clock,
        *,
        worker_id: str | None = None,
        batch_size: int = 200,
        batch_sizes: Mapping[str, int] | None = None,
        lease: timedelta = timedelta(minutes=2),
        leadership: Leadership | None = None,
        leader_only: frozenset[str] = frozenset(),
    ) -> None:
        self.db = db
        self.senders = dict(senders)
        self.notices = notices
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        #: Rows claimed at a time, per channel where ``batch_sizes`` says so. A batch should
        #: take seconds to send, far less than the lease.
        self.batch_sizes = {name: batch_size for name in self.senders} | dict(batch_sizes or {})
        self.lease = lease
        #: Channels whose rate cap must hold across replicas: only the leader sends them.
        self.leader_only = leader_only
        self.leadership = leadership
        self._busy: set[str] = set()  #: the lanes running now
        self._idle = asyncio.Event()
        self._idle.set()
        self._ticks: set[asyncio.Task[int]] = set()  #: held so they are not collected
        self._stopped = False

    async def tick(self) -> None:
        """The scheduler's job: start the idle lanes in the background and return."""
        if self._stopped or self._busy.issuperset(self.senders):
            return
        task = asyncio.create_task(self.run_once())
        self._ticks.add(task)
        task.add_done_callback(self._ticks.discard)

    async def run_once(self) -> int:
        """Run every idle lane until nothing is due; returns how many rows they handled. A
        lane that an earlier call is still running is left to it, so a long Telegram
        broadcast never keeps LINE waiting, nor the other way round."""
        if self._stopped:
            return 0
        lanes = [name for name in self.senders if name not in self._busy]
        if not lanes:
            return 0
        self._busy.update(lanes)
        self._idle.clear()
        results = await asyncio.gather(
            *(self._run_lane(name) for name in lanes), return_exceptions=True
        )
        handled = 0
        for channel, result in zip(lanes, results, strict=True):
            if isinstance(result, BaseException):
                # One lane's failure (its database call, say) must not stop the others.
                log.error("delivery to %s failed", channel, exc_info=result)
            else:
                handled += result
        return handled

    async def stop(self) -> None:
        """Let the batches in progress finish, and start no other."""
        self._stopped = True
        await self._idle.wait()

    async def _run_lane(self, channel: str) -> int:
        try:
            return await self._lane(channel)
        finally:
            self._busy.discard(channel)
            if not self._busy:
                self._idle.set()

    async def _lane(self, channel: str) -> int:
        handled = 0
        flight = _Flight(self, self.senders[channel])
        upcoming = asyncio.create_task(self._claim(channel))
        try:
            while True:
                ids, jobs = await upcoming
                if not ids:
                    return handled
                handled += len(ids)
                upcoming = asyncio.create_task(self._claim(channel))
                await flight.send(jobs)
        finally:
            await self._give_back(upcoming)
            await flight.land()

    async def _give_back(self, upcoming: asyncio.Task[tuple[list[int], list[_Job]]]) -> None:
        """The lane ends (failed or cancelled) while its next batch is being prepared: let
        that claim finish (a moment) and give its rows back, due again at once rather
        than when their lease runs out."""
        try:
            ids, _jobs = await upcoming
        except Exception:  # the claim failed: nothing was claimed
            return
        if not ids:
            return
        try:
            async with self.db.session() as session:
                await outbox.release(session, ids, self.worker_id)
        except Exception:  # the database may be why the lane failed
            log.warning("could not give back %d outbox rows; their lease will", len(ids))

    async def _claim(self, channel: str) -> tuple[list[int], list[_Job]]:
        """Claim the next due rows of a channel and render them."""
        if self._stopped or not await self._may_send(channel):
            return [], []
        now = self.clock.now()
        async with self.db.session() as session:
            idempotent = self.senders[channel].idempotent
            await outbox.resolve_interrupted(
                session, now, channel, idempotent=idempotent, worker=self.worker_id
            )
            ids = await outbox.claim_due(
                session,
                now=now,
                worker=self.worker_id,
                limit=self.batch_sizes[channel],
                lease=self.lease,
                channels=[channel],
            )
        return ids, await self._prepare(ids)

    async def _may_send(self, channel: str) -> bool:
        if channel not in self.leader_only or self.leadership is None:
            return True
        return await self.leadership.check()

    async def _prepare(self, ids: list[int]) -> list[_Job]:
        """Render the claimed rows; drop those no longer worth sending."""
        if not ids:
            return []
        now = self.clock.now()
        jobs = []
        dropped: dict[str, list[int]] = {}
        async with self.db.session() as session:
            rows = await outbox.get_rows(session, ids)
            for row, rendered in zip(
                rows, await self.notices.render_many(session, rows, now), strict=True
            ):
                if rendered.skip_reason is not None:
                    dropped.setdefault(rendered.skip_reason, []).append(row.id)
                else:
                    jobs.append(
                        _Job(
                            row.id,
                            row.channel,
                            row.kind,
                            row.due_at,
                            rendered.user_ids,
                            row.attempts + 1,
                            rendered.recipients,
                            rendered.replies,
                        )
                    )
            for reason, row_ids in dropped.items():
                await outbox.finish_many(
                    session,
                    row_ids,
                    self.worker_id,
                    status=OutboxStatus.DROPPED,
                    now=now,
                    error=reason,
                )
        return jobs

    async def _mark_sending(self, session: AsyncSession, jobs: list[_Job]) -> list[_Job]:
        """Mark the rows as being sent; returns those still ours (not cancelled meanwhile)."""
        marked = set(
            await outbox.mark_sending(
                session,
                [j.row_id for j in jobs],
                self.worker_id,
                lease_until=self.clock.now() + self.lease,
            )
        )
        return [job for job in jobs if job.row_id in marked]

    async def _deliver(self, sender: Sender, job: _Job) -> SendResult:
        try:
            result = await sender.send(job.recipients, job.replies, key=f"outbox:{job.row_id}")
        except Exception as error:  # a sender bug must not stop the other deliveries
            log.exception("sender %s crashed on outbox row %s", sender.channel, job.row_id)
            result = SendResult(Outcome.RETRY, error=type(error).__name__)
        metrics.OUTBOX_RESULTS.labels(sender.channel, job.kind, result.outcome).inc()
        if result.outcome == Outcome.SENT:
            latency = (self.clock.now() - job.due_at).total_seconds()
            metrics.DELIVERY_LATENCY.labels(sender.channel).observe(max(latency, 0.0))
        return result

    async def _record(self, session: AsyncSession, outcomes: list[tuple[_Job, SendResult]]) -> None:
        if not outcomes:
            return
        now = self.clock.now()
        sent = [job.row_id for job, result in outcomes if result.outcome == Outcome.SENT]
        await outbox.finish_many(session, sent, self.worker_id, status=OutboxStatus.SENT, now=now)
        for job, result in outcomes:
            if result.outcome == Outcome.SENT:
                continue
            if result.outcome == Outcome.RETRY and job.attempts < MAX_ATTEMPTS:
                rest = result.unsent if job.kind == OutboxKind.REPLY else None
                await outbox.finish(
                    session,
                    job.row_id,
                    self.worker_id,
                    status=OutboxStatus.PENDING,
                    now=now,
                    error=result.error,
                    retry_at=now + backoff(job.attempts, result.retry_after),
                    body=[reply.to_dict() for reply in rest] if rest is not None else None,
                )
                continue
            await outbox.finish_many(
                session,
                [job.row_id],
                self.worker_id,
                status=OutboxStatus.FAILED,
                now=now,
                error=result.error or result.outcome,
            )
            if result.outcome == Outcome.GONE:
                for user_id in job.user_ids:
                    user = await users.get_by_id(session, user_id)
                    if user is not None:
                        await users.mark_inactive(session, user, now, "blocked")


class _Flight:
    """The messages of one lane on their way to the platform: up to ``sender.in_flight`` at
    once, across the lane's batches, so the platform's pace is kept while each call waits
    for its answer.

    A row is marked as being sent before it leaves, in the transaction that records the
    results that came in meanwhile. Where the platform drops repeats, a batch is marked at
    once (a repeat after a crash is harmless); elsewhere each message is marked on its
    own, so that a crash leaves at most ``in_flight`` rows whose fate is unknown.
    """

    def __init__(self, delivery: Delivery, sender: Sender) -> None:
        self.delivery = delivery
        self.sender = sender
        self._slots = asyncio.Semaphore(sender.in_flight)
        self._landed: list[tuple[_Job, SendResult]] = []  #: answered, not yet recorded
        self._flying: set[asyncio.Task[None]] = set()

    async def send(self, jobs: list[_Job]) -> None:
        """Start sending ``jobs``; returns once the last of them has left."""
        if self.sender.idempotent:
            for job in await self._mark(jobs):
                await self._slots.acquire()
                self._take_off(job)
            return
        for job in jobs:
            await self._slots.acquire()
            try:
                marked = await self._mark([job])
            except BaseException:
                self._slots.release()
                raise
            if marked:
                self._take_off(job)
            else:
                self._slots.release()

    async def land(self) -> None:
        """Wait for every message on its way and record the results."""
        while self._flying:
            await asyncio.gather(*self._flying)
        landed, self._landed = self._landed, []
        if landed:
            async with self.delivery.db.session() as session:
                await self.delivery._record(session, landed)

    async def _mark(self, jobs: list[_Job]) -> list[_Job]:
        landed, self._landed = self._landed, []
        try:
            async with self.delivery.db.session() as session:
                await self.delivery._record(session, landed)
                return await self.delivery._mark_sending(session, jobs)
        except BaseException:
            # Marking failed (a lock timeout, say) and rolled back the results recorded
            # with it: they are kept, to be recorded with the next mark or on landing.
            self._landed = landed + self._landed
            raise

    def _take_off(self, job: _Job) -> None:
        task = asyncio.create_task(self._fly(job))
        self._flying.add(task)
        task.add_done_callback(self._flying.discard)

    async def _fly(self, job: _Job) -> None:
        try:
            result = await self.delivery._deliver(self.sender, job)
            # Not in one expression: ``self._landed`` is swapped for a new list meanwhile.
            self._landed.append((job, result))
        finally:
            self._slots.release()


@dataclass(frozen=True, slots=True)
class _Job:
    row_id: int
    channel: str
    kind: str
    due_at: datetime
    user_ids: list[int]
    attempts: int
    recipients: list[str]
    replies: list[Reply]


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Exponential backoff from 5 s, capped at an hour, never shorter than asked."""
    wait = min(timedelta(seconds=5 * 2 ** (attempts - 1)), MAX_BACKOFF)
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait
