"""Helpers for driving a conversation and looking into the database in tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text

from core.conversation import Conversation
from core.messages import Event, Incoming, Reply
from core.store.db import Database


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
