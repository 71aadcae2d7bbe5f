"""The terminal chat: numbered choices, typed text, reminders printed into the chat."""

from __future__ import annotations

import io
from datetime import datetime

from rich.console import Console

from bot.console import CHANNEL, USER_ID, ConsoleSender, TerminalChat
from core.messages import Incoming
from core.outbox import Delivery
from tests.conftest import JST


def terminal(kigen) -> tuple[TerminalChat, io.StringIO]:
    out = io.StringIO()
    return TerminalChat(kigen, Console(file=out, width=120, color_system=None)), out


async def test_choices_are_numbered_and_a_number_picks_one(kigen):
    chat, out = terminal(kigen)
    chat.show(await kigen.conversation.handle(chat.incoming("/help")))
    assert "1) Add a reminder" in out.getvalue()
    assert chat.incoming("1") == Incoming(CHANNEL, USER_ID, choice="menu:add")
    assert chat.incoming("99").text == "99"
    assert chat.incoming("/list").command == "list"


async def test_a_due_reminder_is_printed_into_the_chat(kigen, clock):
    chat, out = terminal(kigen)
    for line in ("/remind", "1", "1", "2027-03-15", "1"):
        chat.show(await kigen.conversation.handle(chat.incoming(line)))
    assert "Saved: Residence card (period of stay)" in out.getvalue()
    delivery = Delivery(kigen.db, {CHANNEL: ConsoleSender(chat)}, kigen.notices, clock)
    clock.move_to(datetime(2026, 12, 15, 9, 0, tzinfo=JST))
    assert await delivery.run_once() == 1
    assert "The renewal window for your Residence card (period of stay) is open" in out.getvalue()
