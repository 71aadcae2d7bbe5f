"""The daily job: delete what has passed its retention period."""

from __future__ import annotations

import logging
from datetime import timedelta

from core.clock import Clock
from core.config import Settings
from core.store import retention
from core.store.db import Database

log = logging.getLogger(__name__)


async def run(db: Database, settings: Settings, clock: Clock) -> dict[str, int]:
    """Apply the retention periods of ``settings``; returns what was deleted."""
    now = clock.now()
    async with db.session() as session:
        counts = {
            "expiries": await retention.delete_expiries_before(
                session, (now - timedelta(days=settings.retention_expired_days)).date()
            ),
            "users": await retention.delete_users_inactive_since(
                session, now - timedelta(days=settings.retention_inactive_days)
            ),
            "events": await retention.delete_events_before(
                session, now - timedelta(days=settings.retention_events_days)
            ),
            "question_stats": await retention.delete_question_stats_before(
                session, (now - timedelta(days=settings.retention_questions_days)).date()
            ),
        }
    log.info("housekeeping deleted %s", counts)
    return counts
