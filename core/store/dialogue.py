"""Queries on dialogue state: where a resident is in a multi-step flow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from core.store import sql
from core.store.models import DialogueState


async def save_state(
    session: AsyncSession,
    user_id: int,
    state: DialogueState | None,
    flow: str,
    step: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Store where the resident is; ``state`` is their row as loaded this turn, if any.

    A new row is an upsert: another process may have stored one for the same resident
    since this turn began (the later turn wins)."""
    if state is None:
        table = DialogueState.__table__
        values = {"flow": flow, "step": step, "data": data, "updated_at": now}
        statement = sql.insert(session, table).values(user_id=user_id, **values)
        statement = statement.on_conflict_do_update(index_elements=["user_id"], set_=values)
        await session.execute(statement)
    elif (state.flow, state.step, state.data) != (flow, step, data):
        state.flow, state.step, state.data, state.updated_at = flow, step, dict(data), now


async def clear_state(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(DialogueState).where(DialogueState.user_id == user_id))
