"""The JSON-lines channel: one JSON object a line in, one a line out, in order.

In:  ``{"user": "u1", "text": "..."}``, ``{"user": "u1", "choice": "<id>"}``,
``{"user": "u1", "date": "2027-03-15"}``, ``{"user": "u1", "event": "follow"}``; an
optional ``"lang"`` is the platform's language hint.
Out: ``{"user": "u1", "lang": "en", "replies": [{"text", "choices", "date_request",
"intent", "language"}]}``, or ``{"error": "...", "line": N}`` for a line that is not a
valid request.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any, TextIO

from core.conversation import Conversation
from core.messages import Event, Incoming, clean_text

CHANNEL = "jsonl"


class RequestError(ValueError):
    """A line that is not a valid request."""


def parse_request(line: str) -> Incoming:
    """Turn one input line into an Incoming, or raise :class:`RequestError`."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise RequestError(f"not JSON: {error.msg}") from None
    except RecursionError:
        raise RequestError("not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise RequestError("expected a JSON object")
    user = data.get("user")
    if not isinstance(user, str | int) or isinstance(user, bool) or not str(user).strip():
        raise RequestError("'user' must be a non-empty string")
    user_id = clean_text(str(user))[:64]
    hint = data.get("lang")
    if hint is not None and not isinstance(hint, str):
        raise RequestError("'lang' must be a string")
    kinds = [key for key in ("text", "choice", "date", "event") if key in data]
    if len(kinds) != 1:
        raise RequestError("give exactly one of 'text', 'choice', 'date' or 'event'")
    kind, value = kinds[0], data[kinds[0]]
    if not isinstance(value, str):
        raise RequestError(f"'{kind}' must be a string")
    if kind == "text":
        return Incoming.from_text(CHANNEL, user_id, value, language_hint=hint)
    if kind == "choice":
        return Incoming(CHANNEL, user_id, choice=value, language_hint=hint)
    if kind == "date":
        try:
            picked = date.fromisoformat(value)
        except ValueError:
            raise RequestError("'date' must be YYYY-MM-DD") from None
        return Incoming(CHANNEL, user_id, picked_date=picked, language_hint=hint)
    try:
        event = Event(value)
    except ValueError:
        raise RequestError("'event' must be 'follow' or 'unfollow'") from None
    return Incoming(CHANNEL, user_id, event=event, language_hint=hint)


async def answer_line(conversation: Conversation, line: str, number: int) -> dict[str, Any]:
    try:
        incoming = parse_request(line)
    except RequestError as error:
        return {"error": str(error), "line": number}
    replies = await conversation.handle(incoming)
    language = replies[0].language if replies else None
    return {
        "user": clean_text(incoming.user_id),
        "lang": language,
        "replies": [reply.to_dict() for reply in replies],
    }


async def serve(conversation: Conversation, stdin: TextIO, stdout: TextIO) -> None:
    """Answer each line of ``stdin`` on ``stdout`` as soon as it is read, until EOF."""
    number = 0
    while line := await asyncio.to_thread(stdin.readline):
        number += 1
        if not line.strip():
            continue
        result = await answer_line(conversation, line, number)
        stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        stdout.flush()
