"""A fake Telegram Bot API server for tests.

The real python-telegram-bot (PTB) library talks to it over real HTTP on 127.0.0.1::

    from telegram import Bot
    from tests.fakes.telegram import FakeTelegram

    with FakeTelegram(token="123456:TEST-token") as fake:
        async with Bot(fake.token, base_url=fake.base_url) as bot:
            await bot.send_message(chat_id=42, text="hello")
        assert fake.sent_texts(42) == ["hello"]
        fake.assert_no_violations()

What it does
------------
* Serves ``POST`` (and ``GET``) ``/bot{token}/{method}`` with uvicorn in a background thread,
  so any event loop (any pytest-asyncio loop scope) can reach it. A request with another token
  gets ``401 Unauthorized``.
* Accepts ``application/x-www-form-urlencoded`` (what PTB sends), ``multipart/form-data`` (file
  uploads) and ``application/json`` bodies, plus query-string parameters. Form values are
  JSON-decoded according to the parameter types declared in the official spec (``api.json``):
  PTB sends strings as-is and ``json.dumps`` everything else.
* Validates **every** call against ``api.json``: unknown method, unknown parameter, missing
  required parameter, ill-typed value (recursively through objects, arrays and union types
  such as ``BotCommandScope``; fields documented as "must be X" / 'always "X"' must equal X),
  and Telegram's practical limits (text 1-4096 characters, caption <= 1024, callback_data
  1-64 bytes, exactly one action per inline button, answerCallbackQuery text <= 200, bot
  commands ``[a-z0-9_]{1,32}`` with 1-256 character descriptions and at most 100 of them,
  webhook secret tokens, well-formed HTML when ``parse_mode="HTML"``).
  An invalid call is answered like Telegram (HTTP 400 ``Bad Request: ...``; an unknown method
  gets Telegram's ``404 Not Found``) **and** appended to :attr:`FakeTelegram.violations`, so a
  fixture can fail the test with :meth:`FakeTelegram.assert_no_violations`.
* Gives realistic results for getMe, sendMessage, editMessageText, editMessageReplyMarkup,
  answerCallbackQuery, set/get/deleteMyCommands, set/deleteWebhook, getWebhookInfo, getUpdates
  sendDocument and sendMediaGroup. Any other method that returns a Message (sendPhoto, ...)
  gets a generic Message; every other valid method answers ``{"ok": true, "result": true}``
  unless a test set a result with :meth:`FakeTelegram.set_result`.
* Records every request (:attr:`FakeTelegram.requests`, a list of :class:`RecordedRequest`).
* Fault injection: :meth:`~FakeTelegram.fail_next`, :meth:`~FakeTelegram.block_chat`,
  :attr:`~FakeTelegram.delay`, and a Telegram-like rate limiter
  (:meth:`~FakeTelegram.rate_limit`); :meth:`~FakeTelegram.max_rate_observed` reports the
  highest number of messages seen in any sliding window.
* Incoming updates: :meth:`~FakeTelegram.push_update` feeds ``getUpdates`` (offset, limit,
  long-poll ``timeout`` and ``allowed_updates`` honoured); builders ``make_*_update`` produce
  spec-valid Update dicts; :func:`post_update` and
  :meth:`~FakeTelegram.post_to_registered_webhook` deliver updates to a webhook.

Realism notes (things the real Telegram does that this fake copies)
-------------------------------------------------------------------
* ``message_id`` counts per chat and is shared by incoming and outgoing messages.
* ``editMessageText`` / ``editMessageReplyMarkup`` with the same text and markup as the stored
  message answer ``400 Bad Request: message is not modified`` (not a violation: it is a normal
  API error). Editing without ``reply_markup`` removes the inline keyboard.
* ``getUpdates`` while a webhook is set answers ``409 Conflict``.
* With :attr:`~FakeTelegram.delay`, the call takes effect at once and only the answer is late,
  so a client-side timeout does not mean the message was not sent.

Deliberate simplifications: webhook URLs may be plain ``http://``; MarkdownV2 / Markdown text
is not parsed (its raw length is counted); unknown message ids can be edited.

Spec location: ``<repo>/../shared/specs/telegram/api.json``, or ``$KIGEN_SPECS_DIR/telegram/
api.json``. Use :func:`spec_available` to ``pytest.skip`` when it is missing.
"""

from __future__ import annotations

import asyncio
import functools
import html
import itertools
import json
import math
import os
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.rates import most_in_window

__all__ = [
    "SPEC_PATH",
    "BackgroundServer",
    "FakeTelegram",
    "RecordedRequest",
    "TelegramSpec",
    "UploadedFile",
    "load_spec",
    "post_update",
    "spec_available",
]

# ---------------------------------------------------------------------------------------------
# Spec location and loading
# ---------------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_spec_path() -> Path:
    specs_dir = os.environ.get("KIGEN_SPECS_DIR")
    base = Path(specs_dir) if specs_dir else REPO_ROOT.parent / "shared" / "specs"
    return base / "telegram" / "api.json"


#: Path of the Telegram Bot API spec (PaulSonOfLars format) used to validate calls.
SPEC_PATH: Path = _default_spec_path()


def spec_available() -> bool:
    """True if :data:`SPEC_PATH` exists (tests should ``pytest.skip`` otherwise)."""
    return SPEC_PATH.is_file()


@functools.cache
def load_spec(path: Path | str = SPEC_PATH) -> TelegramSpec:
    """Load (once per path) and return the :class:`TelegramSpec` at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Telegram Bot API spec not found at {path}; set KIGEN_SPECS_DIR to the directory "
            "that contains telegram/api.json"
        )
    return TelegramSpec(json.loads(path.read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------------------------
# Small data classes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content: bytes
    content_type: str

    def as_tuple(self) -> tuple[str, bytes, str]:
        return (self.filename, self.content, self.content_type)


@dataclass
class RecordedRequest:
    """One request the fake received.

    ``method`` is the canonical Bot API name (e.g. ``sendMessage``) or, for an unknown method,
    the name as sent. ``params`` are decoded Python values (``chat_id`` is an ``int``,
    ``reply_markup`` a ``dict``; an uploaded file is an :class:`UploadedFile`). ``files`` maps
    multipart field name to ``(filename, bytes, content_type)``. ``timestamp`` is
    ``time.monotonic()`` at arrival; ``status`` the HTTP status answered; ``response`` the JSON
    body answered.
    """

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes, str]]
    timestamp: float
    status: int
    response: dict[str, Any] = field(default_factory=dict)
    http_method: str = "POST"

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def result(self) -> Any:
        return self.response.get("result")


@dataclass
class _Fault:
    method: str
    status: int
    description: str
    retry_after: int | None
    remaining: int
    chat_id: Any


class _BadRequest(Exception):
    """Raised while reading a body that cannot be accepted."""


# ---------------------------------------------------------------------------------------------
# Spec-driven validation
# ---------------------------------------------------------------------------------------------

_PRIMITIVES = {"Integer", "Float", "Boolean", "True", "String", "InputFile"}
# 'Scope type, must be default' / 'Type of the reaction, always "emoji"'
_CONST_RE = re.compile(r'(?:must be|always) "?([a-z][a-z0-9_]*)"?\.?$')
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# Button fields that do not choose the button's action.
_BUTTON_NON_ACTION_FIELDS = {"text", "icon_custom_emoji_id", "style"}
_PARSE_MODES = {"html", "markdown", "markdownv2"}
_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji", "tg-time",
}  # fmt: skip
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
_ENTITY_RE = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|lt|gt|amp|quot);")


def _describe(value: Any) -> str:
    if isinstance(value, UploadedFile):
        return "an uploaded file"
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def parse_html(text: str) -> tuple[str, str | None]:
    """Parse Telegram-style HTML. Returns ``(plain_text, error_or_None)``.

    Follows the Bot API formatting rules: only the supported tags, properly nested and
    closed; a ``<`` that does not start a tag is an error (it must be written ``&lt;``);
    ``&lt; &gt; &amp; &quot;`` and numeric entities are decoded, any other ``&`` is literal.
    """
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG_RE.match(text, i)
            offset = len(text[:i].encode("utf-8"))
            if not m:
                return "", (
                    f"can't parse entities: unexpected '<' at byte offset {offset} "
                    "(write it as &lt;)"
                )
            closing, name = m.group(1), m.group(2).lower()
            if name not in _HTML_TAGS:
                kind = "end" if closing else "start"
                return "", (
                    f'can\'t parse entities: Unsupported {kind} tag "{name}" '
                    f"at byte offset {offset}"
                )
            if closing:
                if not stack or stack[-1] != name:
                    return "", (
                        f"can't parse entities: Unmatched end tag at byte offset {offset}, "
                        f'expected "</{stack[-1] if stack else ""}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
            continue
        if ch == "&":
            m = _ENTITY_RE.match(text, i)
            if m:
                out.append(html.unescape(m.group(0)))
                i = m.end()
                continue
        out.append(ch)
        i += 1
    if stack:
        return "", (
            f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\""
        )
    return "".join(out), None


def _plain_text(text: str, parse_mode: Any) -> tuple[str, str | None]:
    if isinstance(parse_mode, str) and parse_mode.lower() == "html":
        return parse_html(text)
    return text, None


class TelegramSpec:
    """The Bot API as described by ``api.json`` (PaulSonOfLars format), with a validator.

    ``check_type("Update", value)`` validates any object; ``validate_call`` decodes and
    validates the parameters of one method call.
    """

    def __init__(self, data: dict[str, Any]):
        self.version: str = data.get("version", "?")
        self.methods: dict[str, dict[str, Any]] = data["methods"]
        self.types: dict[str, dict[str, Any]] = data["types"]
        self._method_index = {name.lower(): name for name in self.methods}
        self._consts: dict[str, dict[str, str]] = {
            name: self._const_fields(tdef) for name, tdef in self.types.items()
        }

    @staticmethod
    def _const_fields(tdef: dict[str, Any]) -> dict[str, str]:
        consts: dict[str, str] = {}
        for f in tdef.get("fields", []):
            if f["types"] == ["String"] and f["required"]:
                m = _CONST_RE.search(f["description"])
                if m:
                    consts[f["name"]] = m.group(1)
        return consts

    # -- lookup --------------------------------------------------------------------------------

    def canonical_method(self, name: str) -> str | None:
        """The spec's spelling of a method name (Telegram matches them case-insensitively)."""
        return self._method_index.get(name.lower())

    def method_fields(self, method: str) -> dict[str, dict[str, Any]]:
        return {f["name"]: f for f in self.methods[method].get("fields", [])}

    def returns(self, method: str) -> list[str]:
        return list(self.methods[method].get("returns", []))

    # -- type checking -------------------------------------------------------------------------

    def check_type(self, type_name: str, value: Any, path: str = "$") -> list[str]:
        """Errors (empty if valid) of ``value`` against a type expression such as ``Update``,
        ``Array of BotCommand`` or ``Integer``."""
        return self._check_types([type_name], value, path, frozenset())

    def _check_types(
        self, types: list[str], value: Any, path: str, files: frozenset[str]
    ) -> list[str]:
        if len(types) == 1:
            return self._check_one(types[0], value, path, files)
        failures = []
        for t in types:
            errs = self._check_one(t, value, path, files)
            if not errs:
                return []
            failures.append((t, errs))
        plausible = [(t, errs) for t, errs in failures if self._kind_matches(t, value)]
        if len(plausible) > 1 and isinstance(value, dict):
            # Several object types (e.g. reply_markup): report against the one whose fields
            # best match the keys that were sent, if there is a clear winner.
            scored = sorted(
                ((self._overlap(t, value), errs) for t, errs in plausible),
                key=lambda item: item[0],
                reverse=True,
            )
            if scored[0][0] > scored[1][0]:
                return scored[0][1]
        if len(plausible) == 1:
            return plausible[0][1]
        return [f"{path}: expected {' or '.join(types)}, got {_describe(value)}"]

    def _overlap(self, t: str, value: dict[str, Any]) -> int:
        tdef = self.types.get(t, {})
        if tdef.get("subtypes"):
            return max(self._overlap(s, value) for s in tdef["subtypes"])
        return sum(1 for f in tdef.get("fields", []) if f["name"] in value)

    def _kind_matches(self, t: str, value: Any) -> bool:
        if t.startswith("Array of "):
            return isinstance(value, list)
        if t in ("Integer", "Float"):
            return isinstance(value, int | float) and not isinstance(value, bool)
        if t in ("Boolean", "True"):
            return isinstance(value, bool)
        if t == "String":
            return isinstance(value, str)
        if t == "InputFile":
            return isinstance(value, UploadedFile) or (
                isinstance(value, str) and value.startswith("attach://")
            )
        tdef = self.types.get(t, {})
        if tdef.get("subtypes"):
            return any(self._kind_matches(s, value) for s in tdef["subtypes"])
        return isinstance(value, dict)

    def _check_one(self, t: str, value: Any, path: str, files: frozenset[str]) -> list[str]:
        if t.startswith("Array of "):
            if not isinstance(value, list):
                return [f"{path}: expected {t}, got {_describe(value)}"]
            inner = t[len("Array of ") :]
            errors: list[str] = []
            for i, item in enumerate(value):
                errors += self._check_types([inner], item, f"{path}[{i}]", files)
            return errors
        if t in _PRIMITIVES:
            if self._primitive_ok(t, value, files):
                return []
            if t == "InputFile" and isinstance(value, str) and value.startswith("attach://"):
                return [f"{path}: {value} names no file part of the request"]
            return [f"{path}: expected {t}, got {_describe(value)}"]
        tdef = self.types.get(t)
        if tdef is None:
            return [f"{path}: type {t} is not in the spec"]
        if tdef.get("subtypes"):
            return self._check_union(t, tdef["subtypes"], value, path, files)
        return self._check_object(t, tdef, value, path, files)

    @staticmethod
    def _primitive_ok(t: str, value: Any, files: frozenset[str]) -> bool:
        if t == "Integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if t == "Float":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if t == "Boolean":
            return isinstance(value, bool)
        if t == "True":
            return value is True
        if t == "String":
            return isinstance(value, str)
        # InputFile: an uploaded part, or attach://<name> pointing at one.
        if isinstance(value, UploadedFile):
            return True
        return (
            isinstance(value, str)
            and value.startswith("attach://")
            and value[len("attach://") :] in files
        )

    def _check_union(
        self, name: str, subtypes: list[str], value: Any, path: str, files: frozenset[str]
    ) -> list[str]:
        # Dispatch on a discriminator field ("type", "status", "source") when every member
        # declares one; otherwise accept the value if any member accepts it.
        keys = {next(iter(self._consts.get(s) or {"": ""})) for s in subtypes}
        if len(keys) == 1 and "" not in keys and all(s in self.types for s in subtypes):
            key = keys.pop()
            if not isinstance(value, dict):
                return [f"{path}: expected {name} object, got {_describe(value)}"]
            if key not in value:
                return [f"{path}.{key}: required field of {name} is missing"]
            by_tag = {self._consts[s][key]: s for s in subtypes}
            member = by_tag.get(value[key])
            if member is None:
                return [
                    f"{path}.{key}: {value[key]!r} is not a {name} "
                    f"(expected one of {', '.join(sorted(by_tag))})"
                ]
            return self._check_object(member, self.types[member], value, path, files)
        return self._check_types(list(subtypes), value, path, files)

    def _check_object(
        self, name: str, tdef: dict[str, Any], value: Any, path: str, files: frozenset[str]
    ) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: expected {name} object, got {_describe(value)}"]
        fields = {f["name"]: f for f in tdef.get("fields", [])}
        if not fields:  # e.g. CallbackGame: "holds no information"
            return []
        errors = [f"{path}.{k}: unknown field of {name}" for k in value if k not in fields]
        errors += [
            f"{path}.{k}: required field of {name} is missing"
            for k, f in fields.items()
            if f["required"] and k not in value
        ]
        consts = self._consts.get(name, {})
        for k, v in value.items():
            if k not in fields:
                continue
            errors += self._check_types(fields[k]["types"], v, f"{path}.{k}", files)
            if k in consts and v != consts[k]:
                errors.append(f"{path}.{k}: must be {consts[k]!r} for {name}, got {v!r}")
        if not errors and name in _TYPE_RULES:
            errors += _TYPE_RULES[name](value, path)
        return errors

    # -- whole calls ---------------------------------------------------------------------------

    def decode_value(self, types: list[str], raw: Any, from_json: bool) -> Any:
        """Turn a wire value into a Python value according to the declared ``types``.

        Form values (and strings inside JSON bodies) whose type is not plain ``String`` are
        JSON-decoded; a value that does not decode, or decodes to something the type does not
        accept while ``String`` is allowed (``chat_id="@channel"``, a file_id), stays a string.
        """
        if isinstance(raw, UploadedFile) or types == ["String"] or not isinstance(raw, str):
            return raw
        if from_json and "String" in types:
            return raw
        try:
            decoded = json.loads(raw)
        except ValueError:
            return raw
        if "String" in types and self._check_types(types, decoded, "", frozenset()):
            return raw
        return decoded

    def validate_call(
        self,
        method: str,
        values: dict[str, Any],
        files: dict[str, UploadedFile],
        from_json: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        """Decode and validate one call of ``method`` (canonical name).

        ``values`` are the non-file parameters (strings for form bodies), ``files`` the
        multipart file parts. Returns ``(params, errors)``.
        """
        fields = self.method_fields(method)
        params: dict[str, Any] = {}
        errors: list[str] = []
        for name, raw in values.items():
            if name not in fields:
                errors.append(f"unknown parameter {name!r} for method {method}")
                continue
            params[name] = self.decode_value(fields[name]["types"], raw, from_json)
        for name, upload in files.items():
            if name in fields:
                if name in params:
                    errors.append(f"parameter {name!r} was sent both as a value and as a file")
                params[name] = upload
        errors += [
            f"parameter {name!r} is required for method {method}"
            for name, f in fields.items()
            if f["required"] and name not in params
        ]
        file_names = frozenset(files)
        for name, value in params.items():
            errors += self._check_types(fields[name]["types"], value, name, file_names)
        # File parts that are not parameters must be referenced as attach://<name>.
        referenced = set(_attach_refs(params.values()))
        errors += [
            f"unknown parameter {name!r} for method {method} (file part not referenced by "
            "any attach:// value)"
            for name in files
            if name not in fields and name not in referenced
        ]
        errors += [
            f"attach://{name} names no file part of the request"
            for name in sorted(referenced - set(files))
        ]
        if not errors:
            errors += _method_rules(method, params, fields)
        return params, errors


def _attach_refs(values: Iterable[Any]) -> Iterable[str]:
    for v in values:
        if isinstance(v, str) and v.startswith("attach://"):
            yield v[len("attach://") :]
        elif isinstance(v, dict):
            yield from _attach_refs(v.values())
        elif isinstance(v, list):
            yield from _attach_refs(v)


def _rule_inline_button(button: dict[str, Any], path: str) -> list[str]:
    errors = []
    actions = sorted(k for k in button if k not in _BUTTON_NON_ACTION_FIELDS)
    if len(actions) != 1:
        errors.append(
            f"{path}: an inline keyboard button needs exactly one action field "
            f"(url, callback_data, ...), got {actions or 'none'}"
        )
    if "callback_data" in button:
        size = len(button["callback_data"].encode("utf-8"))
        if not 1 <= size <= 64:
            errors.append(
                f"{path}.callback_data: BUTTON_DATA_INVALID, must be 1-64 bytes, got {size} bytes"
            )
    if not button["text"]:
        errors.append(f"{path}.text: button text must not be empty")
    return errors


def _rule_bot_command(command: dict[str, Any], path: str) -> list[str]:
    errors = []
    if not _COMMAND_RE.match(command["command"]):
        errors.append(
            f"{path}.command: BOT_COMMAND_INVALID, must be 1-32 characters of a-z, 0-9 and _, "
            f"got {command['command']!r}"
        )
    if not 1 <= len(command["description"]) <= 256:
        errors.append(
            f"{path}.description: must be 1-256 characters, got {len(command['description'])}"
        )
    return errors


_TYPE_RULES: dict[str, Callable[[dict[str, Any], str], list[str]]] = {
    "InlineKeyboardButton": _rule_inline_button,
    "BotCommand": _rule_bot_command,
}


def _method_rules(method: str, p: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    """Telegram's practical limits that the spec only states in prose."""
    errors: list[str] = []
    parse_mode = p.get("parse_mode")
    if isinstance(parse_mode, str) and parse_mode.lower() not in _PARSE_MODES:
        errors.append(f"unsupported parse_mode {parse_mode!r}")
        return errors
    if method in ("sendMessage", "editMessageText") and isinstance(p.get("text"), str):
        plain, err = _plain_text(p["text"], parse_mode)
        if err:
            errors.append(err)
        elif not plain.strip():
            errors.append("message text is empty")
        elif len(plain) > 4096:
            errors.append(f"message is too long: text has {len(plain)} characters (max 4096)")
    if "caption" in fields and isinstance(p.get("caption"), str):
        plain, err = _plain_text(p["caption"], parse_mode)
        if err:
            errors.append(err)
        elif len(plain) > 1024:
            errors.append(f"message caption is too long: {len(plain)} characters (max 1024)")
    if (
        method.startswith("editMessage")
        and "inline_message_id" in fields
        and "inline_message_id" not in p
        and ("chat_id" not in p or "message_id" not in p)
    ):
        errors.append("chat_id and message_id are required if inline_message_id is not given")
    if method == "editMessageText" and "text" not in p and "rich_message" not in p:
        errors.append("parameter 'text' is required for method editMessageText")
    if method == "answerCallbackQuery" and len(p.get("text", "")) > 200:
        errors.append(
            f"callback query answer text is too long: {len(p['text'])} characters (max 200)"
        )
    if method == "setMyCommands" and len(p["commands"]) > 100:
        errors.append(f"too many commands: {len(p['commands'])} (max 100)")
    if method == "setWebhook":
        secret = p.get("secret_token")
        if secret is not None and not _SECRET_RE.match(secret):
            errors.append("secret_token must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        if not 1 <= p.get("max_connections", 40) <= 100:
            errors.append("max_connections must be 1-100")
    if method == "getUpdates" and not 1 <= p.get("limit", 100) <= 100:
        errors.append("limit must be 1-100")
    return errors


# ---------------------------------------------------------------------------------------------
# Running an ASGI app in a background thread
# ---------------------------------------------------------------------------------------------


class BackgroundServer:
    """Run an ASGI app with uvicorn on 127.0.0.1 (free port) in a daemon thread.

    Usable from any event loop (or none). ``with BackgroundServer(app) as srv: srv.url``.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1"):
        self.app = app
        self.host = host
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            return
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=0,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="fake-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread = server, thread

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot "
    "instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_BLOCKED = "Forbidden: bot was blocked by the user"
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
# Update types not delivered unless asked for explicitly (Bot API, getUpdates.allowed_updates).
_OPT_IN_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}
_TOKEN_RE = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")

_Answer = tuple[int, dict[str, Any]]


def _ok(result: Any) -> _Answer:
    return 200, {"ok": True, "result": result}


def _error(status: int, description: str, retry_after: int | None = None) -> _Answer:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return status, body


def _is_counted(method: str) -> bool:
    """Methods counted as messages by the rate limiter and :meth:`max_rate_observed`."""
    return method.startswith("send") and method != "sendChatAction"


def _same_chat(a: Any, b: Any) -> bool:
    return a is not None and b is not None and str(a) == str(b)


class FakeTelegram:
    """A fake Telegram Bot API server (see the module docstring for the overview).

    Use it as a context manager (or call :meth:`start` / :meth:`stop`) and point PTB at it
    with ``Bot(fake.token, base_url=fake.base_url)`` or
    ``ApplicationBuilder().token(fake.token).base_url(fake.base_url)``.

    All public methods are thread-safe: the server runs in its own thread and event loop, so
    one instance can serve tests on any event loop (a module- or session-scoped fixture plus
    :meth:`reset` per test is cheapest).

    At a glance::

        fake.start() / fake.stop() / with FakeTelegram(token) as fake: ...
        fake.base_url, fake.token, fake.url, fake.method_url_prefix, fake.bot_user
        fake.requests, fake.calls("sendMessage"), fake.sent_texts(chat_id), fake.sent_messages()
        fake.violations, fake.pop_violations(), fake.assert_no_violations()
        fake.clear(), fake.reset()
        fake.fail_next("sendMessage", 429, retry_after=3, times=1, chat_id=None)
        fake.block_chat(42), fake.unblock_chat(42), fake.delay = 0.5
        fake.rate_limit(per_second=30, per_chat_per_second=1), fake.disable_rate_limit()
        fake.max_rate_observed(window=1.0, chat_id=None)
        fake.set_result("getChat", {...} or callable(params))
        fake.push_update(fake.make_message_update(42, "hi")), fake.pending_updates
        fake.make_command_update / make_callback_update / make_my_chat_member_update
        await fake.post_to_registered_webhook(update), await fake.wait_for_calls(method, n)
        fake.webhook, fake.commands_for(scope, language_code), fake.spec.check_type(T, value)

    Attributes:
        token: the only bot token accepted (others get 401).
        requests: every :class:`RecordedRequest`, in arrival order.
        violations: one human-readable string per invalid call (``"sendMessage: ..."``).
        delay: seconds to wait before answering each request (the call takes effect first).
        webhook: the state set by setWebhook: ``url``, ``secret_token``, ``allowed_updates``,
            ``max_connections`` (``url == ""`` when no webhook is set).
        commands: registered command lists, keyed by ``(scope_json, language_code)``.
    """

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        bot_username: str = "kigen_test_bot",
        bot_first_name: str = "Kigen Test",
        spec_path: Path | str | None = None,
    ):
        if not _TOKEN_RE.match(token):
            raise ValueError(f"token {token!r} does not look like a bot token (123456:ABC-def)")
        self.token = token
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.spec = load_spec(spec_path or SPEC_PATH)
        self.delay: float = 0.0
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._lock = threading.RLock()
        self._server = BackgroundServer(self._build_app())
        self._stopping = False
        self._generation = 0
        self._update_ids = itertools.count(10_000)
        self._callback_ids = itertools.count(1)
        self._reset_state()

    def _reset_state(self) -> None:
        self.webhook: dict[str, Any] = {
            "url": "",
            "secret_token": None,
            "allowed_updates": None,
            "max_connections": 40,
        }
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._message_ids: dict[int, int] = {}
        self._pending: list[dict[str, Any]] = []
        self._allowed_updates: list[str] | None = None
        self._faults: list[_Fault] = []
        self._blocked: set[str] = set()
        self._limits: dict[str, float] | None = None
        self._accepted_all: deque[float] = deque()
        self._accepted_chat: dict[str, deque[float]] = {}
        self._accepted_group: dict[str, deque[float]] = {}
        self._results: dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        """Start serving in a background thread (idempotent). Returns ``self``."""
        self._stopping = False
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop the server; open long polls return at once."""
        self._stopping = True
        self._server.stop()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return self._server.url

    @property
    def base_url(self) -> str:
        """Value for PTB's ``base_url``: ``http://127.0.0.1:PORT/bot`` (PTB appends the token)."""
        return f"{self._server.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for PTB's ``base_file_url`` (file downloads are not served)."""
        return f"{self._server.url}/file/bot"

    @property
    def method_url_prefix(self) -> str:
        """``http://127.0.0.1:PORT/bot<token>/`` — append a method name for raw HTTP calls."""
        return f"{self.base_url}{self.token}/"

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    @property
    def bot_user(self) -> dict[str, Any]:
        """The User returned by getMe."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # -- inspection ----------------------------------------------------------------------------

    def calls(self, method: str) -> list[RecordedRequest]:
        """Recorded requests of one method (any outcome), oldest first."""
        with self._lock:
            return [r for r in self.requests if r.method == method]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """Texts of sendMessage calls answered 200 (optionally only to ``chat_id``)."""
        with self._lock:
            return [
                r.params["text"]
                for r in self.requests
                if r.method == "sendMessage"
                and r.ok
                and (chat_id is None or _same_chat(r.chat_id, chat_id))
            ]

    def sent_messages(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """Message objects returned by successful send* calls (optionally to ``chat_id``)."""
        with self._lock:
            return [
                r.result
                for r in self.requests
                if _is_counted(r.method)
                and r.ok
                and isinstance(r.result, dict)
                and (chat_id is None or _same_chat(r.chat_id, chat_id))
            ]

    def commands_for(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        """The command list setMyCommands registered for ``scope`` (default scope if None)."""
        with self._lock:
            return list(self.commands.get(self._commands_key(scope, language_code), []))

    def clear(self) -> None:
        """Forget recorded requests and violations (state such as updates is kept).

        Requests still in flight (e.g. a long poll left over from the previous test) are
        answered but no longer recorded, and pending long polls return at once.
        """
        with self._lock:
            self._generation += 1
            self.requests.clear()
            self.violations.clear()

    def reset(self) -> None:
        """Back to a fresh fake (records, faults, limits, updates, webhook, commands, delay)."""
        with self._lock:
            self.clear()
            self.delay = 0.0
            self._reset_state()

    def pop_violations(self) -> list[str]:
        """Return and forget the recorded violations (for tests that provoke them)."""
        with self._lock:
            found, self.violations = self.violations, []
            return found

    def assert_no_violations(self) -> None:
        """Raise AssertionError listing every invalid call seen so far."""
        with self._lock:
            if self.violations:
                listing = "\n".join(f"  - {v}" for v in self.violations)
                raise AssertionError(
                    f"the code under test made {len(self.violations)} invalid Telegram "
                    f"call(s):\n{listing}"
                )

    async def wait_for_calls(
        self, method: str, count: int = 1, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until at least ``count`` calls of ``method`` were recorded; return them."""
        deadline = time.monotonic() + timeout
        while len(found := self.calls(method)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} {method} call(s) within {timeout}s, got {len(found)}"
                )
            await asyncio.sleep(0.01)
        return found

    def max_rate_observed(self, window: float = 1.0, chat_id: int | str | None = None) -> int:
        """Most messages seen in any sliding ``window`` seconds.

        Counts every request of a ``send*`` method except sendChatAction that carried the
        right token, whatever the answer (a rejected attempt still hit the API), across all
        chats or only to ``chat_id``.
        """
        with self._lock:
            stamps = [
                r.timestamp
                for r in self.requests
                if _is_counted(r.method)
                and r.status != 401
                and (chat_id is None or _same_chat(r.chat_id, chat_id))
            ]
        return most_in_window(stamps, window)

    # -- fault injection -----------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next ``times`` valid calls of ``method`` (``"*"`` = any method), only to
        ``chat_id`` if given, with an error.

        Default descriptions: 400 "Bad Request: chat not found", 403 "Forbidden: bot was
        blocked by the user", 429 "Too Many Requests: retry after N" (``retry_after``
        defaults to 1 and is sent as ``parameters.retry_after``), 500 "Internal Server Error".
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                description = _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        with self._lock:
            self._faults.append(_Fault(method, status, description, retry_after, times, chat_id))

    def block_chat(self, chat_id: int | str) -> None:
        """From now on every call with this ``chat_id`` answers 403 "bot was blocked"."""
        with self._lock:
            self._blocked.add(str(chat_id))

    def unblock_chat(self, chat_id: int | str) -> None:
        with self._lock:
            self._blocked.discard(str(chat_id))

    def rate_limit(
        self,
        per_second: int | None = 30,
        per_chat_per_second: int | None = 1,
        per_group_per_minute: int | None = None,
    ) -> None:
        """Enable a Telegram-like limiter on send* methods (except sendChatAction).

        A message is refused with 429 and ``retry_after`` (whole seconds until a slot frees)
        when, within the last second, ``per_second`` messages were already accepted overall or
        ``per_chat_per_second`` to the same chat, or within the last minute
        ``per_group_per_minute`` to the same group (negative or ``@name`` chat ids; Telegram's
        figure is 20). ``None`` disables one limit. Refused messages do not use up capacity.
        """
        with self._lock:
            self._limits = {
                "per_second": per_second or math.inf,
                "per_chat": per_chat_per_second or math.inf,
                "per_group_minute": per_group_per_minute or math.inf,
            }

    def disable_rate_limit(self) -> None:
        with self._lock:
            self._limits = None

    def set_result(self, method: str, result: Any) -> None:
        """Answer valid calls of ``method`` with ``{"ok": true, "result": result}``.

        ``result`` may be a callable ``(params) -> result``. Overrides the built-in handler.
        """
        with self._lock:
            self._results[method] = result

    # -- updates -------------------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an Update for getUpdates (an ``update_id`` is assigned if missing)."""
        if "update_id" not in update:
            update = {"update_id": self._next_update_id(), **update}
        with self._lock:
            self._pending.append(update)
            self._pending.sort(key=lambda u: u["update_id"])
        return update

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pending)

    def _next_update_id(self) -> int:
        with self._lock:
            return next(self._update_ids)

    def _next_message_id(self, chat_id: int) -> int:
        with self._lock:
            self._message_ids[chat_id] = self._message_ids.get(chat_id, 0) + 1
            return self._message_ids[chat_id]

    @staticmethod
    def _user(user_id: int, language_code: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Test"}
        if language_code is not None:
            user["language_code"] = language_code
        return user

    def make_message_update(
        self,
        chat_id: int,
        text: str,
        language_code: str | None = "en",
        user_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An Update with a text message from a user (``user_id`` defaults to ``chat_id``)."""
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": self._user(user_id or abs(chat_id), language_code),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        return {"update_id": self._next_update_id(), "message": message}

    def make_command_update(
        self,
        chat_id: int,
        command: str,
        args: str = "",
        language_code: str | None = "en",
        user_id: int | None = None,
    ) -> dict[str, Any]:
        """An Update with ``/command args`` and its ``bot_command`` entity."""
        cmd = "/" + command.lstrip("/")
        text = f"{cmd} {args}" if args else cmd
        entity = {"type": "bot_command", "offset": 0, "length": len(cmd.encode("utf-16-le")) // 2}
        return self.make_message_update(chat_id, text, language_code, user_id, [entity])

    def make_callback_update(
        self,
        chat_id: int,
        data: str,
        message_id: int,
        language_code: str | None = "en",
        user_id: int | None = None,
    ) -> dict[str, Any]:
        """An Update for a press on an inline button with ``data`` under bot message
        ``message_id`` (the stored message if the bot sent it through this fake)."""
        with self._lock:
            message = self._messages.get((self._chat(chat_id)["id"], message_id))
        if message is None:
            message = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": self._chat(chat_id),
                "date": int(time.time()),
                "text": "(message)",
            }
        query = {
            "id": str(next(self._callback_ids)),
            "from": self._user(user_id or abs(chat_id), language_code),
            "message": json.loads(json.dumps(message)),
            "chat_instance": str(zlib.crc32(str(chat_id).encode())),
            "data": data,
        }
        return {"update_id": self._next_update_id(), "callback_query": query}

    def make_my_chat_member_update(
        self, chat_id: int, status: str = "kicked", user_id: int | None = None
    ) -> dict[str, Any]:
        """An Update telling the bot its status in ``chat_id`` changed to ``"kicked"`` (the
        user blocked the bot) or ``"member"`` (unblocked / restarted it)."""
        if status not in ("kicked", "member"):
            raise ValueError("status must be 'kicked' or 'member'")

        def member(st: str) -> dict[str, Any]:
            m: dict[str, Any] = {"status": st, "user": self.bot_user}
            if st == "kicked":
                m["until_date"] = 0
            return m

        old = "member" if status == "kicked" else "kicked"
        return {
            "update_id": self._next_update_id(),
            "my_chat_member": {
                "chat": self._chat(chat_id),
                "from": self._user(user_id or abs(chat_id), None),
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(status),
            },
        }

    async def post_to_registered_webhook(
        self, update: dict[str, Any], timeout: float = 10.0
    ) -> httpx.Response:
        """POST ``update`` to the URL given to setWebhook, with its secret token header."""
        with self._lock:
            url, secret = self.webhook["url"], self.webhook["secret_token"]
        if not url:
            raise RuntimeError("no webhook registered (setWebhook was not called)")
        return await post_update(url, update, secret_token=secret, timeout=timeout)

    # -- HTTP ----------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        async def not_found(request: Request) -> JSONResponse:
            status, body = _error(404, "Not Found")
            return JSONResponse(body, status_code=status)

        return Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/{path:path}", not_found, methods=["GET", "POST"]),
            ]
        )

    async def _read_body(self, request: Request) -> tuple[dict[str, Any], dict, bool]:
        values: dict[str, Any] = dict(request.query_params)
        files: dict[str, UploadedFile] = {}
        content_type = request.headers.get("content-type", "")
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                form = await request.form()
            except Exception as exc:
                raise _BadRequest(f"can't parse the {kind} body: {exc}") from exc
            try:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        files[key] = UploadedFile(
                            value.filename or key,
                            await value.read(),
                            value.content_type or "application/octet-stream",
                        )
                    else:
                        values[key] = value
            finally:
                await form.close()
            return values, files, False
        body = await request.body()
        if kind == "application/json":
            try:
                data = json.loads(body) if body.strip() else {}
            except ValueError as exc:
                raise _BadRequest(f"can't parse JSON body: {exc}") from exc
            if not isinstance(data, dict):
                raise _BadRequest("JSON body must be an object")
            values.update(data)
            return values, files, True
        if not body:
            return values, files, False
        raise _BadRequest(f"unsupported content type {content_type or '(none)'!r}")

    async def _endpoint(self, request: Request) -> JSONResponse:
        arrived = time.monotonic()
        generation = self._generation
        raw_method = request.path_params["method"]
        method = self.spec.canonical_method(raw_method) or raw_method
        params: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        if request.path_params["token"] != self.token:
            answer = _error(401, "Unauthorized")
        else:
            try:
                values, files, from_json = await self._read_body(request)
            except _BadRequest as exc:
                answer = self._violation(method, [str(exc)])
            else:
                if self.spec.canonical_method(raw_method) is None:
                    params = dict(values)
                    answer = self._violation(method, [f"unknown method {raw_method!r}"], 404)
                else:
                    params, errors = self.spec.validate_call(method, values, files, from_json)
                    answer = self._violation(method, errors) if errors else None
                if answer is None:
                    try:
                        answer = await self._answer(method, params, arrived)
                    except Exception as exc:  # a bug in the fake or in a set_result callable
                        with self._lock:
                            self.violations.append(f"{method}: fake server error: {exc!r}")
                        answer = _error(500, f"Internal Server Error: {exc!r}")
        status, body = answer
        record = RecordedRequest(
            method=method,
            params=params,
            files={k: f.as_tuple() for k, f in files.items()},
            timestamp=arrived,
            status=status,
            response=body,
            http_method=request.method,
        )
        with self._lock:
            if generation == self._generation:
                self.requests.append(record)
        if self.delay:
            await asyncio.sleep(self.delay)
        return JSONResponse(body, status_code=status)

    def _violation(self, method: str, errors: list[str], status: int = 400) -> _Answer:
        with self._lock:
            self.violations.extend(f"{method}: {e}" for e in errors)
        if status == 404:
            return _error(404, "Not Found")
        return _error(400, f"Bad Request: {errors[0]}")

    async def _answer(self, method: str, params: dict[str, Any], arrived: float) -> _Answer:
        with self._lock:
            refused = self._injected_fault(method, params) or self._rate_check(
                method, params, arrived
            )
            if refused:
                return refused
            if method in self._results:
                result = self._results[method]
                return _ok(result(params) if callable(result) else result)
            if method != "getUpdates":
                return self._handle(method, params)
        return await self._get_updates(params)

    def _injected_fault(self, method: str, params: dict[str, Any]) -> _Answer | None:
        chat_id = params.get("chat_id")
        for fault in self._faults:
            if fault.method not in ("*", method):
                continue
            if fault.chat_id is not None and not _same_chat(fault.chat_id, chat_id):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return _error(fault.status, fault.description, fault.retry_after)
        if chat_id is not None and str(chat_id) in self._blocked:
            return _error(403, _BLOCKED)
        return None

    def _rate_check(self, method: str, params: dict[str, Any], now: float) -> _Answer | None:
        if self._limits is None or not _is_counted(method):
            return None
        chat = str(params.get("chat_id"))
        is_group = chat.startswith(("-", "@"))
        windows = [(self._accepted_all, self._limits["per_second"], 1.0)]
        windows.append(
            (self._accepted_chat.setdefault(chat, deque()), self._limits["per_chat"], 1.0)
        )
        if is_group:
            windows.append(
                (
                    self._accepted_group.setdefault(chat, deque()),
                    self._limits["per_group_minute"],
                    60.0,
                )
            )
        wait = 0.0
        for stamps, limit, period in windows:
            while stamps and now - stamps[0] >= period:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = max(wait, stamps[len(stamps) - int(limit)] + period - now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        for stamps, _limit, _period in windows:
            stamps.append(now)
        return None

    # -- method handlers (called with the lock held) ----------------------------------------

    @staticmethod
    def _chat(chat_id: int | str) -> dict[str, Any]:
        if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
            name = chat_id.lstrip("@")
            return {
                "id": -1_000_000_000_000 - zlib.crc32(name.encode()),
                "type": "channel",
                "title": name,
                "username": name,
            }
        cid = int(chat_id)
        if cid > 0:
            return {"id": cid, "type": "private", "first_name": "Test"}
        if str(cid).startswith("-100"):
            return {"id": cid, "type": "supergroup", "title": "Test supergroup"}
        return {"id": cid, "type": "group", "title": "Test group"}

    @staticmethod
    def _commands_key(scope: dict[str, Any] | None, language_code: str | None) -> tuple[str, str]:
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code or ""

    def _new_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _handle(self, method: str, p: dict[str, Any]) -> _Answer:
        handler = getattr(self, f"_do_{method}", None)
        if handler is not None:
            return handler(p)
        if self.spec.returns(method) == ["Message"] and "chat_id" in p:
            message = self._new_message(p)
            if "caption" in p:
                message["caption"] = _plain_text(p["caption"], p.get("parse_mode"))[0]
            return _ok(message)
        return _ok(True)

    def _do_getMe(self, p: dict[str, Any]) -> _Answer:
        return _ok(self.bot_user)

    def _do_sendMessage(self, p: dict[str, Any]) -> _Answer:
        message = self._new_message(p)
        message["text"] = _plain_text(p["text"], p.get("parse_mode"))[0]
        if p.get("entities"):
            message["entities"] = p["entities"]
        return _ok(message)

    def _do_sendDocument(self, p: dict[str, Any]) -> _Answer:
        message = self._new_message(p)
        doc = p["document"]
        file_id = f"DOC-{zlib.crc32(repr(doc).encode()):08x}"
        document: dict[str, Any] = {"file_id": file_id, "file_unique_id": file_id[4:]}
        if isinstance(doc, UploadedFile):
            document.update(
                file_name=doc.filename, mime_type=doc.content_type, file_size=len(doc.content)
            )
        message["document"] = document
        if "caption" in p:
            message["caption"] = _plain_text(p["caption"], p.get("parse_mode"))[0]
        return _ok(message)

    def _do_sendMediaGroup(self, p: dict[str, Any]) -> _Answer:
        messages = []
        for media in p["media"]:
            message = self._new_message(p)
            message["media_group_id"] = "MG-1"
            if "caption" in media:
                message["caption"] = _plain_text(media["caption"], media.get("parse_mode"))[0]
            messages.append(message)
        return _ok(messages)

    def _edit(self, p: dict[str, Any], text: str | None) -> _Answer:
        if "inline_message_id" in p:
            return _ok(True)
        chat = self._chat(p["chat_id"])
        key = (chat["id"], p["message_id"])
        old = self._messages.get(key)
        markup = p.get("reply_markup")
        if (
            old is not None
            and old.get("reply_markup") == markup
            and (text is None or old.get("text") == text)
        ):
            return _error(400, _NOT_MODIFIED)
        message = (
            dict(old)
            if old
            else {
                "message_id": p["message_id"],
                "from": self.bot_user,
                "chat": chat,
                "date": int(time.time()),
            }
        )
        message["edit_date"] = int(time.time())
        if text is not None:
            message["text"] = text
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        self._messages[key] = message
        return _ok(message)

    def _do_editMessageText(self, p: dict[str, Any]) -> _Answer:
        text = _plain_text(p["text"], p.get("parse_mode"))[0] if "text" in p else None
        return self._edit(p, text)

    def _do_editMessageReplyMarkup(self, p: dict[str, Any]) -> _Answer:
        return self._edit(p, None)

    def _do_setMyCommands(self, p: dict[str, Any]) -> _Answer:
        key = self._commands_key(p.get("scope"), p.get("language_code"))
        if p["commands"]:
            self.commands[key] = p["commands"]
        else:
            self.commands.pop(key, None)
        return _ok(True)

    def _do_getMyCommands(self, p: dict[str, Any]) -> _Answer:
        key = self._commands_key(p.get("scope"), p.get("language_code"))
        return _ok(self.commands.get(key, []))

    def _do_deleteMyCommands(self, p: dict[str, Any]) -> _Answer:
        self.commands.pop(self._commands_key(p.get("scope"), p.get("language_code")), None)
        return _ok(True)

    def _do_setWebhook(self, p: dict[str, Any]) -> _Answer:
        self.webhook.update(
            url=p["url"],
            secret_token=p.get("secret_token"),
            max_connections=p.get("max_connections", 40),
        )
        if "allowed_updates" in p:
            self.webhook["allowed_updates"] = p["allowed_updates"] or None
        if p.get("drop_pending_updates"):
            self._pending.clear()
        return _ok(True)

    def _do_deleteWebhook(self, p: dict[str, Any]) -> _Answer:
        self.webhook.update(url="", secret_token=None)
        if p.get("drop_pending_updates"):
            self._pending.clear()
        return _ok(True)

    def _do_getWebhookInfo(self, p: dict[str, Any]) -> _Answer:
        info: dict[str, Any] = {
            "url": self.webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook["url"]:
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook["allowed_updates"]:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return _ok(info)

    # -- getUpdates ----------------------------------------------------------------------------

    def _take_updates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        wanted = [
            u
            for u in self._pending
            if (kind := next((k for k in u if k != "update_id"), ""))
            and (kind in allowed if allowed else kind not in _OPT_IN_UPDATES)
        ]
        # Updates of types the bot did not ask for are dropped, as Telegram does.
        self._pending = wanted
        return wanted[: p.get("limit", 100)]

    async def _get_updates(self, p: dict[str, Any]) -> _Answer:
        with self._lock:
            if self.webhook["url"]:
                return _error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use "
                    "deleteWebhook to delete the webhook first",
                )
            offset = p.get("offset", 0)
            if offset > 0:
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
            elif offset < 0:
                self._pending = self._pending[offset:]
            if "allowed_updates" in p:
                self._allowed_updates = p["allowed_updates"] or None
        deadline = time.monotonic() + max(0, p.get("timeout", 0))
        generation = self._generation
        while True:
            with self._lock:
                if generation != self._generation:  # cleared: a stale poll must not take updates
                    return _ok([])
                found = self._take_updates(p)
            if found or self._stopping or time.monotonic() >= deadline:
                return _ok(found)
            await asyncio.sleep(0.01)


async def post_update(
    url: str,
    update: dict[str, Any],
    secret_token: str | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST an Update as JSON to a webhook ``url`` as Telegram does.

    Sends ``X-Telegram-Bot-Api-Secret-Token`` when ``secret_token`` is given. Proxies from the
    environment are ignored. Returns the httpx response.
    """
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret_token} if secret_token else {}
    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
        return await client.post(url, json=update, headers=headers)
