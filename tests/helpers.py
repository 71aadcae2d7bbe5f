"""Helpers for driving a conversation and looking into the database in tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from datetime import date
from typing import Any

from sqlalchemy import select, text

from core import reminders
from core.app import Kigen
from core.conversation import Conversation
from core.messages import Event, Incoming, Reply
from core.store import expiries, users
from core.store.db import Database
from core.store.models import Expiry, OutboxMessage, User


class Chat:
    """One resident talking to Kigen through :class:`Conversation` directly."""

    def __init__(self, conversation: Conversation, user: str = "u1", channel: str = "test") -> None:
        self.conversation = conversation
        self.user = user
        self.channel = channel
        self.last: list[Reply] = []

    async def _send(self, incoming: Incoming) -> list[Reply]:
        self.last = await self.conversation.handle(incoming)
        return self.last

    async def say(self, text: str, *, hint: str | None = None) -> list[Reply]:
        return await self._send(
            Incoming.from_text(self.channel, self.user, text, language_hint=hint)
        )

    async def press(self, choice: str) -> list[Reply]:
        offered = {c.id for reply in self.last for c in reply.choices}
        assert choice in offered, f"{choice!r} was not offered; offered: {sorted(offered)}"
        return await self._send(Incoming(self.channel, self.user, choice=choice))

    async def press_unoffered(self, choice: str) -> list[Reply]:
        return await self._send(Incoming(self.channel, self.user, choice=choice))

    async def pick(self, day: date) -> list[Reply]:
        return await self._send(Incoming(self.channel, self.user, picked_date=day))

    async def follow(self, *, hint: str | None = None) -> list[Reply]:
        return await self._send(
            Incoming(self.channel, self.user, event=Event.FOLLOW, language_hint=hint)
        )

    async def unfollow(self) -> list[Reply]:
        return await self._send(Incoming(self.channel, self.user, event=Event.UNFOLLOW))


def intents(replies: list[Reply]) -> list[str]:
    return [reply.intent for reply in replies]


def choice_ids(replies: list[Reply]) -> list[str]:
    return [choice.id for reply in replies for choice in reply.choices]


async def reply_rows(db: Database) -> list[OutboxMessage]:
    """The queued answers (outbox rows of kind ``reply``), oldest first."""
    async with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == "reply")
        return list((await session.execute(query.order_by(OutboxMessage.id))).scalars())


async def dump_tables(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but Alembic's), for 'nothing left' and 'never stored' checks."""
    async with db.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: sync.dialect.get_table_names(sync))
        tables = {}
        for name in names:
            if name == "alembic_version":
                continue
            rows = await connection.execute(text(f'SELECT * FROM "{name}"'))
            tables[name] = [tuple(row) for row in rows]
    return tables


async def due_reminders(kigen: Kigen, channel: str, platform_ids, expires_on: date) -> None:
    """Residents on ``channel`` (platform ids from ``platform_ids``), each with a residence
    card expiring on ``expires_on`` and its reminders planned."""
    now = kigen.clock.now()
    async with kigen.db.session() as session:
        for platform_id in platform_ids:
            user, _ = await users.get_or_create_user(session, channel, str(platform_id), now)
            user.language, user.consent_at = "en", now
            await expiries.add_expiry(session, user.id, "residence_card", expires_on, now)
    async with kigen.db.session() as session:
        for expiry in (await session.execute(select(Expiry))).scalars():
            user = await session.get(User, expiry.user_id)
            await reminders.replan(session, user, expiry, now)


def wait_for(condition, timeout: float, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


async def wait_for_async(condition, timeout: float, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """:func:`wait_for` on the event loop: ``condition`` may return a bool or an awaitable
    of one, and the loop goes on between the polls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(interval)
    return False
