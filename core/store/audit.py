"""The audit log: who did what in the console or on the command line, and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.store.models import AuditEntry


def record(
    session: AsyncSession,
    now: datetime,
    operator: str,
    action: str,
    target: str | None = None,
    detail: str | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=now,
            operator=operator,
            action=action,
            target=target,
            detail=detail[:500] if detail else None,
        )
    )


async def recent(session: AsyncSession, limit: int = 200) -> list[AuditEntry]:
    result = await session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return list(result.scalars())
