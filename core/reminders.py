"""Turning a saved expiry into outbox rows: one per step of its reminder ladder."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core import schedule
from core.store import expiries, outbox
from core.store.db import Database
from core.store.models import Expiry, ExpiryStatus, User
from core.store.outbox import PlannedReminder

#: How long after its moment the last reminder of a ladder is still worth sending.
LAST_STEP_SHELF_LIFE = timedelta(days=2)


def plan(expiry: Expiry, user: User, now: datetime) -> list[PlannedReminder]:
    """The reminders still to come for ``expiry``, at the resident's hour and time zone.

    Each row goes stale when the next step falls due: a "window opens" reminder that
    could not be sent before the "1 month left" one is skipped, not sent late. Steps whose
    moment has already passed at planning time are left out: the resident has just been
    told the dates.
    """
    steps = schedule.reminder_steps(schedule.DocumentKind(expiry.kind), expiry.expires_on)
    moments = [
        schedule.due_at(step.due_on, hour=user.reminder_hour, tz=user.timezone) for step in steps
    ]
    planned = []
    for index, (step, due) in enumerate(zip(steps, moments, strict=True)):
        stale = moments[index + 1] if index + 1 < len(moments) else due + LAST_STEP_SHELF_LIFE
        if due > now:
            planned.append(PlannedReminder(step=step.name, due_at=due, stale_at=stale))
    return planned


async def replan(session: AsyncSession, user: User, expiry: Expiry, now: datetime) -> None:
    """Rewrite the pending rows of ``expiry`` (in the caller's transaction)."""
    if expiry.status in (ExpiryStatus.APPLIED, ExpiryStatus.STOPPED):
        await outbox.drop_pending_reminders(session, expiry.id)
        return
    await outbox.replace_reminders(
        session,
        user_id=user.id,
        channel=user.channel,
        expiry_id=expiry.id,
        about_date=expiry.expires_on,
        planned=plan(expiry, user, now),
    )


async def replan_all(session: AsyncSession, user: User, now: datetime) -> None:
    """Rewrite the pending rows of every expiry of ``user`` (after a change of hour or
    time zone, or when a resident comes back)."""
    for expiry in await expiries.list_expiries(session, user.id):
        await replan(session, user, expiry, now)


async def plan_missing(db: Database, now: datetime, *, batch_size: int = 5000) -> int:
    """The daily planning job: make sure every active expiry has its ladder in the outbox.

    Saving a date plans its ladder in the same transaction, so this normally adds nothing;
    it repairs what an interrupted operation or a restored backup left out. Expiries are
    streamed in batches (memory stays flat however many there are) and rows already
    planned or sent are left alone. Returns the number of rows added.
    """
    added, last_id = 0, 0
    while True:
        async with db.session() as session:
            batch = await expiries.page_with_users(session, after_id=last_id, limit=batch_size)
            if not batch:
                return added
            rows = [
                outbox.reminder_values(user, expiry, item)
                for expiry, user in batch
                if user.active and expiry.status == ExpiryStatus.ACTIVE
                for item in plan(expiry, user, now)
            ]
            added += await outbox.insert_reminders(session, rows)
            last_id = batch[-1][0].id
