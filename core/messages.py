"""The only language spoken between the core and the adapters.

An adapter turns what a platform delivers into an :class:`Incoming`, hands it to
:meth:`core.conversation.Conversation.handle`, and renders the :class:`Reply` list it
gets back with the platform's own widgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any


class Event(StrEnum):
    """Platform events that are not messages."""

    FOLLOW = "follow"  #: the resident added the bot (LINE follow, Telegram /start or unblock)
    UNFOLLOW = "unfollow"  #: the resident blocked or removed the bot
    UNSUPPORTED = "unsupported"  #: a sticker, photo, voice message...: something not text


def clean_text(value: str) -> str:
    """Text safe to store and send: lone surrogates (from escaped JSON) become U+FFFD and
    NUL characters, which PostgreSQL refuses, are removed."""
    if value.isascii():
        return value.replace("\x00", "")
    cleaned = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return cleaned.replace("\x00", "")


@dataclass(frozen=True, slots=True)
class Incoming:
    """One thing a resident did: typed text, a command, a pressed choice, a picked date
    or a follow/unfollow.

    Args:
        channel: The channel name (``telegram``, ``line``, ``console``, ``jsonl``).
        user_id: The platform's id of the resident, unique within the channel.
        language_hint: The platform's idea of the resident's language (a BCP 47 tag),
            used only for a resident who has not chosen one.
    """

    channel: str
    user_id: str
    text: str | None = None
    command: str | None = None
    argument: str = ""
    choice: str | None = None
    picked_date: date | None = None
    event: Event | None = None
    language_hint: str | None = None

    def cleaned(self) -> Incoming:
        """The same Incoming with every string made safe by :func:`clean_text`."""
        changes = {
            name: clean_text(getattr(self, name))
            for name in ("user_id", "text", "command", "argument", "choice", "language_hint")
            if isinstance(getattr(self, name), str)
        }
        return replace(self, **changes)

    @classmethod
    def from_text(cls, channel: str, user_id: str, text: str, **extra: Any) -> Incoming:
        """Build an Incoming from typed text, recognising ``/command argument``."""
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1:
            head, _, argument = stripped[1:].partition(" ")
            command = head.split("@", 1)[0].lower()
            if command.isascii() and command.replace("_", "").isalnum():
                return cls(channel, user_id, command=command, argument=argument.strip(), **extra)
        return cls(channel, user_id, text=text, **extra)


@dataclass(frozen=True, slots=True)
class Choice:
    """A button: ``id`` comes back as :attr:`Incoming.choice` when it is pressed."""

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Document:
    """A file sent along with a reply (``/mydata`` export, calendar file)."""

    filename: str
    media_type: str
    content: bytes
    #: A signed link to the same file, for platforms that cannot send files.
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One message from Kigen.

    Args:
        text: What the resident reads, already translated.
        intent: A stable machine-readable name of what Kigen did, such as
            ``faq:<entry-id>``, ``fallback``, ``clarify``, ``reminder:saved``.
        language: The language code the text is written in.
        choices: Buttons offered with the message.
        date_request: Kigen asks for a date: a date picker where the platform has one.
        document: A file to send with the message.
    """

    text: str
    intent: str
    language: str
    choices: tuple[Choice, ...] = ()
    date_request: bool = False
    document: Document | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-lines form of the reply."""
        data: dict[str, Any] = {
            "text": self.text,
            "choices": [{"id": c.id, "label": c.label} for c in self.choices],
            "date_request": self.date_request,
            "intent": self.intent,
            "language": self.language,
        }
        if self.document is not None:
            data["document"] = {
                "filename": self.document.filename,
                "media_type": self.document.media_type,
                "content": self.document.content.decode("utf-8"),
                "url": self.document.url,
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        """The reply that :meth:`to_dict` gave."""
        document = data.get("document")
        return cls(
            text=data["text"],
            intent=data["intent"],
            language=data["language"],
            choices=tuple(Choice(c["id"], c["label"]) for c in data["choices"]),
            date_request=data["date_request"],
            document=Document(
                document["filename"],
                document["media_type"],
                document["content"].encode("utf-8"),
                document["url"],
            )
            if document
            else None,
        )


def split_text(text: str, limit: int) -> list[str]:
    """Cut a text into pieces of at most ``limit`` characters, at paragraph or line ends
    where possible, for platforms that cap the length of one message."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit))
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    pieces.append(text)
    return pieces
