"""The terminal chat: Kigen with nothing configured, for one resident at a keyboard.

Choices are numbered (type the number), dates are typed, and reminders that fall due
are printed into the chat by the same delivery job every channel uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.console import Console

from core.app import Kigen
from core.messages import Event, Incoming, Reply
from core.outbox import Outcome, SendResult

CHANNEL = "console"
USER_ID = "local"


class ConsoleSender:
    """Prints due reminders into the terminal."""

    channel = CHANNEL
    idempotent = False
    max_recipients = 1
    in_flight = 1

    def __init__(self, chat: TerminalChat) -> None:
        self.chat = chat

    async def send(
        self, recipients: Sequence[str], replies: Sequence[Reply], *, key: str
    ) -> SendResult:
        self.chat.show(replies, reminder=True)
        return SendResult(Outcome.SENT)


class TerminalChat:
    """Reads lines from the keyboard and prints Kigen's replies."""

    def __init__(self, kigen: Kigen, console: Console | None = None) -> None:
        self.kigen = kigen
        self.console = console or Console(highlight=False)
        self._choices: list[str] = []

    def show(self, replies: Sequence[Reply], *, reminder: bool = False) -> None:
        for reply in replies:
            style = "bold yellow" if reminder else "cyan"
            self.console.print(f"[{style}]kigen[/{style}] ", end="")
            self.console.print(reply.text, markup=False)
            if reply.document is not None:
                self.console.print(reply.document.content.decode("utf-8"), markup=False)
            if reply.choices:
                self._choices = [choice.id for choice in reply.choices]
                for number, choice in enumerate(reply.choices, start=1):
                    self.console.print(f"  [bold]{number}[/bold]) ", end="")
                    self.console.print(choice.label, markup=False)

    def incoming(self, line: str) -> Incoming:
        """A typed number picks a choice of the last message; anything else is text."""
        stripped = line.strip()
        if stripped.isascii() and stripped.isdigit() and 1 <= int(stripped) <= len(self._choices):
            return Incoming(CHANNEL, USER_ID, choice=self._choices[int(stripped) - 1])
        return Incoming.from_text(CHANNEL, USER_ID, line)

    async def run(self) -> None:
        conversation = self.kigen.conversation
        self.show(await conversation.handle(Incoming(CHANNEL, USER_ID, event=Event.FOLLOW)))
        while True:
            try:
                line = await asyncio.to_thread(self.console.input, "[green]you[/green] › ")
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                return
            if line.strip() in {"/quit", "/exit"}:
                return
            if line.strip():
                self.show(await conversation.handle(self.incoming(line)))
