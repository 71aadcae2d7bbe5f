"""Wiring: build Kigen's core parts from the settings, ready for any channel."""

from __future__ import annotations

from dataclasses import dataclass

from core.clock import Clock, SystemClock
from core.config import Settings
from core.conversation import Conversation
from core.i18n import SUPPORTED, Catalogs
from core.knowledge import KnowledgeBase
from core.notices import Notices
from core.store.db import Database


@dataclass
class Kigen:
    """The core parts one process shares between its channels."""

    settings: Settings
    db: Database
    catalogs: Catalogs
    kb: KnowledgeBase
    conversation: Conversation
    notices: Notices
    clock: Clock

    async def close(self) -> None:
        """Write what is kept in memory, then close the database."""
        try:
            await self.conversation.tally.flush(self.db)
        finally:
            await self.db.dispose()


async def build(settings: Settings | None = None, clock: Clock | None = None) -> Kigen:
    """Open the database (migrating it), load catalogs and the knowledge base."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    db = Database(settings.resolved_database_url)
    await db.upgrade()
    catalogs = Catalogs(settings.locales_dir, SUPPORTED)
    kb = KnowledgeBase.load(settings.locales_dir, SUPPORTED)
    conversation = Conversation(db, kb, catalogs, settings, clock)
    return Kigen(settings, db, catalogs, kb, conversation, Notices(catalogs, kb), clock)
