"""A fake LINE Messaging API server and a LINE webhook sender, for tests.

``FakeLine`` is an HTTP server on 127.0.0.1, run by uvicorn in a background thread. The real
line-bot-sdk talks to it over HTTP when ``Configuration(host=fake.base_url, ...)`` is used. With a
``host`` set, the SDK sends *every* endpoint to that host, including the blob endpoints that
normally go to api-data.line.me, so one fake serves both hosts::

    with FakeLine() as fake:                      # or fake.start() ... fake.stop()
        async with AsyncApiClient(Configuration(host=fake.base_url,
                                                access_token=fake.access_token)) as client:
            await AsyncMessagingApi(client).push_message(PushMessageRequest(...))
        assert fake.delivered_to("U...") == ["hello"]
        fake.assert_no_violations()

What the fake does for each request, in this order:

1. It checks ``Authorization: Bearer <access_token>`` and answers 401 otherwise.
2. It finds the operation in ``messaging-api.yml``. An unknown path answers 404 and is a violation.
3. It validates the JSON body against the schema that the spec declares for that operation,
   following OpenAPI ``discriminator`` mappings (``Message`` -> ``TextMessage``, and so on). It also
   checks that ``X-Line-Retry-Key`` is a UUID and is only sent where the spec accepts it. An
   invalid request answers 400 like LINE does, ``{"message": "The request body has N error(s)",
   "details": [{"message", "property"}]}``, and is recorded in ``fake.violations``.
4. It applies ``rate_limit()`` and ``fail_next()`` faults.
5. A retry key already accepted for the same endpoint within 24 h answers 409
   ``{"message": "The retry key is already accepted"}`` with ``x-line-accepted-request-id``.
6. It runs the endpoint (push, reply, multicast, rich menus, ...). Operations that the fake does
   not implement answer 501.
7. It waits ``fake.delay`` seconds, *after* processing, so a client that times out may still have
   had its message delivered, as with the real platform.

Every request is recorded as a :class:`LineRequest` in ``fake.requests``. Every response carries
an ``x-line-request-id`` header.

``LineWebhookSender`` builds webhook bodies (valid against ``webhook.yml#CallbackRequest``), signs
them with the channel secret and POSTs them to the bot under test. When linked to a ``FakeLine``,
its reply tokens are registered there, so the fake can check ``reply_message`` calls.

The specs are read from ``<repo>/../shared/specs/line/``. Set ``KIGEN_SPECS_DIR`` to a directory
that contains ``line/messaging-api.yml`` to read them from elsewhere. Use ``spec_available()`` and
``spec_missing_reason()`` to skip tests when they are absent.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import uvicorn
import yaml
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.rates import most_in_window

__all__ = [
    "MONTHLY_LIMIT_MESSAGE",
    "RICH_MENU_IMAGE_MAX_BYTES",
    "FakeLine",
    "LineRequest",
    "LineWebhookSender",
    "messaging_body_errors",
    "new_webhook_event_id",
    "spec_available",
    "spec_missing_reason",
    "specs_dir",
    "webhook_body_errors",
]

# --------------------------------------------------------------------------------------------
# Specs: location, loading (cached per process) and validation
# --------------------------------------------------------------------------------------------

SPECS_ENV = "KIGEN_SPECS_DIR"
_DEFAULT_SPECS_DIR = Path(__file__).resolve().parents[3] / "shared" / "specs"
_MESSAGING_SPEC = "messaging-api.yml"
_WEBHOOK_SPEC = "webhook.yml"


def specs_dir() -> Path:
    """The directory holding ``line/messaging-api.yml``: ``$KIGEN_SPECS_DIR`` or the default."""
    env = os.environ.get(SPECS_ENV)
    return Path(env) if env else _DEFAULT_SPECS_DIR


def spec_available() -> bool:
    """True when both ``line/messaging-api.yml`` and ``line/webhook.yml`` exist."""
    line_dir = specs_dir() / "line"
    return (line_dir / _MESSAGING_SPEC).is_file() and (line_dir / _WEBHOOK_SPEC).is_file()


def spec_missing_reason() -> str:
    """A skip reason that says where the specs were looked for."""
    return (
        f"LINE OpenAPI specs not found in {specs_dir() / 'line'}; set {SPECS_ENV} to a directory "
        f"containing line/{_MESSAGING_SPEC} and line/{_WEBHOOK_SPEC}"
    )


@functools.cache
def _load_yaml(path: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)


def _spec(name: str) -> dict[str, Any]:
    path = specs_dir() / "line" / name
    if not path.is_file():
        raise FileNotFoundError(spec_missing_reason())
    return _load_yaml(str(path))


_discriminator_guard = threading.local()


def _discriminator(validator: Any, disc: Any, instance: Any, schema: Any) -> Iterable[Any]:
    """``discriminator`` keyword: validate ``instance`` against ``mapping[instance[prop]]``.

    LINE's specs put the discriminator on the base schema (``Message``) and ``allOf: [Message]``
    in every subtype, so base -> subtype -> base would recurse forever. A per-thread set of
    ``(id(instance), ref)`` pairs being validated stops that cycle.
    """
    if not validator.is_type(instance, "object") or not isinstance(disc, dict):
        return
    prop = disc.get("propertyName")
    mapping = disc.get("mapping") or {}
    tag = instance.get(prop)
    if not isinstance(tag, str) or not mapping:
        return  # a missing or non-string tag is reported by "required"/"type"
    ref = mapping.get(tag)
    if ref is None:
        yield jsonschema.ValidationError(
            f"{tag!r} is not one of {sorted(mapping)}", path=[prop], instance=tag
        )
        return
    active: set[tuple[int, str]] = _discriminator_guard.__dict__.setdefault("active", set())
    key = (id(instance), ref)
    if key in active:
        return
    active.add(key)
    try:
        # Materialise now, so the guard is released even if the caller stops iterating early.
        errors = list(validator.descend(instance, {"$ref": ref}))
    finally:
        active.discard(key)
    yield from errors


_OpenApiValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"discriminator": _discriminator}
)


@functools.cache
def _compiled(spec_path: str, ref: str) -> Any:
    # Under Draft 4 a "$ref" overrides its siblings, so the whole spec can be the root schema.
    return _OpenApiValidator({**_load_yaml(spec_path), "$ref": ref})


def _property_name(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(err: Any) -> tuple[str, str]:
    """(property, message) for one jsonschema error, phrased briefly, without huge reprs."""
    path = list(err.absolute_path)
    kind, value, inst = err.validator, err.validator_value, err.instance
    if kind == "required":
        m = re.match(r"'(.+)' is a required property", err.message)
        return _property_name([*path, m.group(1) if m else "?"]), "must be specified"
    if kind in ("maxItems", "minItems") and isinstance(inst, list):
        bound = "at most" if kind == "maxItems" else "at least"
        return _property_name(path), f"has {len(inst)} items, {bound} {value} allowed"
    if kind in ("maxLength", "minLength") and isinstance(inst, str):
        bound = "at most" if kind == "maxLength" else "at least"
        return _property_name(path), f"has length {len(inst)}, {bound} {value} allowed"
    if kind == "enum":
        return _property_name(path), f"{_short(inst)} is not one of {value}"
    if kind == "type":
        return _property_name(path), f"{_short(inst)} is not of type {value!r}"
    msg = err.message
    return _property_name(path), msg if len(msg) <= 200 else msg[:197] + "..."


_VALID_SHAPES: set[tuple[str, str, str]] = set()
_POSTBACK_DATA = "<postback data>"


def _shape(instance: Any, postback_data: list[Any]) -> Any:
    """``instance`` with every postback action's ``data`` replaced by a placeholder; the
    replaced values are appended to ``postback_data``."""
    if isinstance(instance, list):
        return [_shape(item, postback_data) for item in instance]
    if not isinstance(instance, dict):
        return instance
    shaped = {key: _shape(value, postback_data) for key, value in instance.items()}
    if instance.get("type") == "postback" and "data" in instance:
        postback_data.append(instance["data"])
        shaped["data"] = _POSTBACK_DATA
    return shaped


def _shape_key(
    spec_name: str, schema: str, instance: Any
) -> tuple[tuple[str, str, str], list[Any]] | None:
    """For a body with recipients (``to``): a key for its shape without the recipients and
    without the postback data of its actions, and that data; so that a reminder sent to
    thousands of residents (the same message, each with their own recipient and postback
    ids) is validated in full once. Recipients and postback data are checked on their own by
    :func:`_recipients_valid` and :func:`_postback_data_valid`."""
    if not isinstance(instance, dict) or "to" not in instance:
        return None
    postback_data: list[Any] = []
    rest = _shape({k: v for k, v in instance.items() if k != "to"}, postback_data)
    recipients = "list" if isinstance(instance["to"], list) else "str"
    key = f"{recipients}:{json.dumps(rest, sort_keys=True)}"
    return (spec_name, schema, key), postback_data


def _recipients_valid(instance: dict[str, Any]) -> bool:
    to = instance["to"]
    if isinstance(to, str):
        return 1 <= len(to) <= 100
    return (
        isinstance(to, list) and 1 <= len(to) <= 500 and all(isinstance(u, str) and u for u in to)
    )


@functools.cache
def _postback_data_schema(spec_name: str) -> dict[str, Any]:
    """The spec's own constraints on a postback action's ``data``: a string of bounded
    length (anything else in it would need the full validation)."""
    postback = _spec(spec_name)["components"]["schemas"]["PostbackAction"]
    schema = next(
        part["properties"]["data"]
        for part in postback["allOf"]
        if "data" in part.get("properties", {})
    )
    if schema.get("type") != "string" or set(schema) - {"type", "minLength", "maxLength"}:
        raise ValueError(f"unexpected schema for postback data: {schema}")
    return schema


def _postback_data_valid(spec_name: str, values: list[Any]) -> bool:
    schema = _postback_data_schema(spec_name)
    low, high = schema.get("minLength", 0), schema.get("maxLength", float("inf"))
    return all(isinstance(v, str) and low <= len(v) <= high for v in values)


def _schema_errors(spec_name: str, schema: str, instance: Any) -> list[dict[str, str]]:
    """Errors of ``instance``; a body of a shape already found valid, whose recipients and
    postback data pass their own checks, is accepted without the full validation. Anything
    else, valid or not, is validated in full, so the answer never depends on what the fake
    saw before."""
    shape = _shape_key(spec_name, schema, instance)
    if (
        shape is not None
        and shape[0] in _VALID_SHAPES
        and _recipients_valid(instance)
        and _postback_data_valid(spec_name, shape[1])
    ):
        return []
    details = _full_schema_errors(spec_name, schema, instance)
    if shape is not None and not details:
        _VALID_SHAPES.add(shape[0])
    return details


def _full_schema_errors(spec_name: str, schema: str, instance: Any) -> list[dict[str, str]]:
    ref = schema if schema.startswith("#/") else f"#/components/schemas/{schema}"
    path = specs_dir() / "line" / spec_name
    if not path.is_file():
        raise FileNotFoundError(spec_missing_reason())
    validator = _compiled(str(path), ref)
    seen: set[tuple[str, str]] = set()
    details: list[dict[str, str]] = []
    for err in validator.iter_errors(instance):
        prop, msg = _describe(err)
        if (prop, msg) not in seen:  # base and subtype schemas report the same error twice
            seen.add((prop, msg))
            details.append({"message": msg, "property": prop})
    return details


def messaging_body_errors(schema: str, instance: Any) -> list[dict[str, str]]:
    """LINE-style ``[{"message", "property"}]`` errors of ``instance`` against a schema of
    messaging-api.yml, given as a name (``"PushMessageRequest"``) or a ``#/...`` ref."""
    return _schema_errors(_MESSAGING_SPEC, schema, instance)


def webhook_body_errors(instance: Any, schema: str = "CallbackRequest") -> list[dict[str, str]]:
    """Errors of a webhook body (default: the whole ``CallbackRequest``) against webhook.yml."""
    return _schema_errors(_WEBHOOK_SPEC, schema, instance)


@dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str]
    json_schema: str | None  # "#/components/schemas/X" for JSON bodies
    binary_body: bool
    retry_key: bool  # whether the spec declares X-Line-Retry-Key


@functools.cache
def _operations(spec_path: str) -> tuple[_Operation, ...]:
    spec = _load_yaml(spec_path)
    ops: list[_Operation] = []
    for template, item in spec.get("paths", {}).items():
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        for method, op in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            content = (op.get("requestBody") or {}).get("content") or {}
            json_schema = None
            for ctype, media in content.items():
                if "json" in ctype:
                    json_schema = (media.get("schema") or {}).get("$ref")
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            ops.append(
                _Operation(
                    method=method.upper(),
                    template=template,
                    operation_id=op["operationId"],
                    regex=re.compile(f"^{pattern}$"),
                    json_schema=json_schema,
                    binary_body=bool(content) and json_schema is None,
                    retry_key=any(
                        p.get("in") == "header" and p.get("name", "").lower() == "x-line-retry-key"
                        for p in params
                    ),
                )
            )
    # Literal segments win over parameters: /v2/bot/richmenu/list before /v2/bot/richmenu/{id}.
    ops.sort(key=lambda o: (o.template.count("{"), -len(o.template)))
    return tuple(ops)


def _messaging_operations() -> tuple[_Operation, ...]:
    _spec(_MESSAGING_SPEC)  # raises a clear error when missing
    return _operations(str(specs_dir() / "line" / _MESSAGING_SPEC))


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class LineRequest:
    """One request the fake received, and what it answered."""

    method: str
    path: str
    endpoint: str | None
    """The spec's operationId (``"pushMessage"``), or None for a path not in the spec."""
    headers: dict[str, str]
    """Request headers, names lower-cased."""
    body: bytes
    json: Any
    """The parsed JSON body, or None (no body, binary body, or invalid JSON)."""
    query: dict[str, str]
    time: float
    """``clock()`` (``time.monotonic`` by default) when the fake processed the request."""
    request_id: str
    status: int = 0
    response: Any = None
    """The JSON answered (None when bytes were answered)."""
    errors: list[dict[str, str]] = field(default_factory=list)
    """Validation errors found in this request (also summarised in ``FakeLine.violations``)."""
    recipients: list[str] = field(default_factory=list)
    """User IDs addressed by a push/multicast/reply (reply: the user the token was issued for)."""
    delivered: bool = False
    """True when the fake accepted and delivered the messages (push, reply, multicast, ...)."""

    @property
    def retry_key(self) -> str | None:
        return self.headers.get("x-line-retry-key")

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` array of the JSON body (empty when there is none)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return self.json["messages"]
        return []


@dataclass
class _Fault:
    selector: str
    status: int
    remaining: int
    message: str
    details: list[dict[str, str]] | None
    after_delivery: bool


@dataclass
class _ReplyToken:
    user_id: str
    issued: float
    used: bool = False


@dataclass
class _Answer:
    status: int
    payload: Any = None  # JSON-able, or bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


_DEFAULT_MESSAGES = {
    400: "Bad request",
    401: (
        "Authentication failed. Confirm that the access token in the authorization header is valid."
    ),
    403: "Access to this API is not available for your account",
    404: "Not found",
    409: "The retry key is already accepted",
    413: "Request entity too large",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
MONTHLY_LIMIT_MESSAGE = "You have reached your monthly limit."

_ALIASES = {
    "push": "pushMessage",
    "reply": "replyMessage",
    "profile": "getProfile",
    "loading": "showLoadingAnimation",
}
_DELIVERING = {"pushMessage", "replyMessage", "multicast", "broadcast", "narrowcast"}
_QUOTABLE = {"text", "textV2", "sticker", "image", "video"}
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_IMAGE_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
RICH_MENU_IMAGE_MAX_BYTES = 1024 * 1024


def _message_text(message: Mapping[str, Any]) -> str:
    kind = message.get("type")
    if kind in ("text", "textV2"):
        return str(message.get("text", ""))
    if "altText" in message:
        return str(message["altText"])
    return f"[{kind}]"


# --------------------------------------------------------------------------------------------
# The fake API server
# --------------------------------------------------------------------------------------------


class FakeLine:
    """A fake LINE Messaging API (api.line.me and api-data.line.me) on 127.0.0.1.

    State that tests may read or set directly:

    * ``requests``: every :class:`LineRequest`, in order; ``violations``: one string per bad
      request (schema errors, bad retry key, unknown path, bad image...).
    * ``profiles``: ``{user_id: {"displayName": ..., "language": ...}}`` for ``get_profile``.
    * ``contents``: ``{message_id: (bytes, content_type)}`` for ``get_message_content``
      (unknown ids get some placeholder JPEG-typed bytes).
    * ``rich_menus``, ``rich_menu_images`` (``{id: (bytes, content_type)}``), ``user_rich_menus``
      (``{user_id: rich_menu_id}``), ``default_rich_menu``, ``rich_menu_aliases``.
    * ``delay`` (seconds before each response), ``reply_token_ttl``, ``retry_key_ttl``.

    Endpoint selectors, used by ``fail_next``, ``rate_limit``, ``max_rate_observed`` and
    ``calls``, are a spec operationId (``"pushMessage"``, ``"multicast"``, ``"setRichMenuImage"``,
    case-insensitive), a short alias (``"push"``, ``"reply"``, ``"profile"``, ``"loading"``), or a
    path suffix containing ``/`` (``"/message/push"``, ``"/content"``).
    """

    def __init__(
        self,
        access_token: str = "fake-line-channel-access-token",
        *,
        reply_token_ttl: float = 60.0,
        retry_key_ttl: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.access_token = access_token
        self.reply_token_ttl = reply_token_ttl
        self.retry_key_ttl = retry_key_ttl
        self.delay = 0.0
        self.host = host
        self.port = port
        self.bot_user_id = "U" + secrets.token_hex(16)
        self._clock = clock
        self._lock = threading.RLock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._message_seq = 600_000_000_000_000_000
        self.requests: list[LineRequest] = []
        self.violations: list[str] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, tuple[bytes, str]] = {}
        self.rich_menus: dict[str, dict[str, Any]] = {}
        self.rich_menu_images: dict[str, tuple[bytes, str]] = {}
        self.user_rich_menus: dict[str, str] = {}
        self.default_rich_menu: str | None = None
        self.rich_menu_aliases: dict[str, str] = {}
        self._reply_tokens: dict[str, _ReplyToken] = {}
        self._retry_keys: dict[tuple[str, str], tuple[float, LineRequest]] = {}
        self._faults: list[_Fault] = []
        self._rate_limits: dict[str, float] = {}
        self._narrowcasts: dict[str, float] = {}
        self._handlers: dict[str, Callable[[LineRequest, dict[str, str]], _Answer]] = {
            "replyMessage": self._reply,
            "pushMessage": self._push,
            "multicast": self._multicast,
            "broadcast": self._broadcast,
            "narrowcast": self._narrowcast,
            "getNarrowcastProgress": self._narrowcast_progress,
            "validateReply": self._ok,
            "validatePush": self._ok,
            "validateMulticast": self._ok,
            "validateNarrowcast": self._ok,
            "validateBroadcast": self._ok,
            "getProfile": self._get_profile,
            "getBotInfo": self._get_bot_info,
            "getMessageContent": self._get_message_content,
            "showLoadingAnimation": self._show_loading,
            "createRichMenu": self._create_rich_menu,
            "validateRichMenuObject": self._ok,
            "getRichMenu": self._get_rich_menu,
            "deleteRichMenu": self._delete_rich_menu,
            "getRichMenuList": self._list_rich_menus,
            "setRichMenuImage": self._set_rich_menu_image,
            "getRichMenuImage": self._get_rich_menu_image,
            "setDefaultRichMenu": self._set_default_rich_menu,
            "getDefaultRichMenuId": self._get_default_rich_menu,
            "cancelDefaultRichMenu": self._cancel_default_rich_menu,
            "linkRichMenuIdToUser": self._link_rich_menu,
            "unlinkRichMenuIdFromUser": self._unlink_rich_menu,
            "getRichMenuIdOfUser": self._get_user_rich_menu,
            "linkRichMenuIdToUsers": self._bulk_link,
            "unlinkRichMenuIdFromUsers": self._bulk_unlink,
            "createRichMenuAlias": self._create_alias,
            "updateRichMenuAlias": self._update_alias,
            "getRichMenuAlias": self._get_alias,
            "deleteRichMenuAlias": self._delete_alias,
            "getRichMenuAliasList": self._list_aliases,
        }

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeLine:
        """Start uvicorn in a daemon thread and wait until it listens. Returns self."""
        if self._thread is not None:
            return self
        self._operations = _messaging_operations()
        config = uvicorn.Config(
            self._asgi,
            host=self.host,
            port=self.port,
            lifespan="off",
            interface="asgi3",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="FakeLine", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._thread = None
                raise RuntimeError("FakeLine: uvicorn did not start")
            time.sleep(0.005)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and join its thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeLine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, to pass as ``Configuration(host=...)``."""
        if self._thread is None:
            raise RuntimeError("FakeLine is not started")
        return f"http://{self.host}:{self.port}"

    # ---- test set-up -----------------------------------------------------------------------

    def issue_reply_token(self, user_id: str) -> str:
        """Register and return a fresh reply token for ``user_id`` (single use, ``reply_token_ttl``
        seconds). ``LineWebhookSender(fake=...)`` calls this for each replyable event."""
        token = secrets.token_hex(16)
        with self._lock:
            self._reply_tokens[token] = _ReplyToken(user_id=user_id, issued=self._clock())
        return token

    def add_profile(
        self,
        user_id: str,
        display_name: str = "LINE User",
        language: str | None = "en",
        **extra: Any,
    ) -> None:
        """Make ``get_profile(user_id)`` answer; ``language=None`` omits it (no consent)."""
        profile = {"displayName": display_name, "language": language, **extra}
        with self._lock:
            self.profiles[user_id] = {k: v for k, v in profile.items() if v is not None}

    def fail_next(
        self,
        endpoint: str,
        status: int,
        times: int = 1,
        message: str | None = None,
        *,
        details: list[dict[str, str]] | None = None,
        after_delivery: bool = False,
    ) -> None:
        """Answer the next ``times`` requests to ``endpoint`` with ``status`` and
        ``{"message": message}`` (a LINE-like default per status; for the monthly quota pass
        ``message=MONTHLY_LIMIT_MESSAGE``). Such requests are not delivered and do not consume
        retry keys or reply tokens, unless ``after_delivery=True``: then the request is processed
        normally (delivered, retry key remembered) and only the answer is replaced, as when LINE
        fails after accepting a message."""
        self._check_selector(endpoint)
        with self._lock:
            self._faults.append(
                _Fault(
                    selector=endpoint,
                    status=status,
                    remaining=times,
                    message=message or _DEFAULT_MESSAGES.get(status, f"Error {status}"),
                    details=details,
                    after_delivery=after_delivery,
                )
            )

    def clear_faults(self) -> None:
        """Drop pending ``fail_next`` faults and ``rate_limit`` limits."""
        with self._lock:
            self._faults.clear()
            self._rate_limits.clear()

    def rate_limit(self, endpoint: str, per_second: float | None) -> None:
        """Answer 429 "Too many requests" when more than ``per_second`` requests to ``endpoint``
        arrived within the last second (every attempt counts, refused ones too). None removes
        the limit."""
        self._check_selector(endpoint)
        with self._lock:
            if per_second is None:
                self._rate_limits.pop(endpoint, None)
            else:
                self._rate_limits[endpoint] = per_second

    def reset(self) -> None:
        """Forget everything: records, faults, limits, tokens, retry keys, rich menus, profiles,
        contents, and set ``delay`` to 0. Useful with one server shared by many tests."""
        with self._lock:
            self.clear()
            self.clear_faults()
            self.delay = 0.0
            self.profiles.clear()
            self.contents.clear()
            self.rich_menus.clear()
            self.rich_menu_images.clear()
            self.user_rich_menus.clear()
            self.default_rich_menu = None
            self.rich_menu_aliases.clear()
            self._reply_tokens.clear()
            self._retry_keys.clear()
            self._narrowcasts.clear()

    # ---- assertions helpers ----------------------------------------------------------------

    def clear(self) -> None:
        """Forget recorded requests and violations (server state such as retry keys stays)."""
        with self._lock:
            self.requests.clear()
            self.violations.clear()

    def assert_no_violations(self) -> None:
        """Raise AssertionError listing every invalid request seen so far."""
        with self._lock:
            found = list(self.violations)
        if found:
            raise AssertionError(
                f"{len(found)} LINE API violation(s):\n" + "\n".join(f"- {v}" for v in found)
            )

    def calls(
        self, endpoint: str | None = None, *, accepted: bool | None = None
    ) -> list[LineRequest]:
        """Recorded requests, optionally only those to ``endpoint`` and/or only accepted (2xx)
        or refused ones."""
        if endpoint is not None:
            self._check_selector(endpoint)
        with self._lock:
            reqs = list(self.requests)
        return [
            r
            for r in reqs
            if (endpoint is None or _selector_matches(endpoint, r.endpoint, r.path))
            and (accepted is None or r.accepted == accepted)
        ]

    def pushes(self) -> list[LineRequest]:
        """All push requests, whatever the answer (check ``.status``/``.accepted``)."""
        return self.calls("pushMessage")

    def replies(self) -> list[LineRequest]:
        """All reply requests, whatever the answer."""
        return self.calls("replyMessage")

    def multicasts(self) -> list[LineRequest]:
        """All multicast requests, whatever the answer."""
        return self.calls("multicast")

    def broadcasts(self) -> list[LineRequest]:
        """All broadcast requests, whatever the answer."""
        return self.calls("broadcast")

    def messages_to(self, user_id: str) -> list[dict[str, Any]]:
        """Message objects actually delivered to ``user_id`` by reply, push or multicast, in
        order. Requests answered 4xx/5xx (409 included) are not deliveries; see ``fail_next``'s
        ``after_delivery`` for the exception. Broadcast/narrowcast have no recipient list and
        are not included."""
        with self._lock:
            reqs = list(self.requests)
        out: list[dict[str, Any]] = []
        for r in reqs:
            if r.delivered and user_id in r.recipients:
                out.extend(r.messages)
        return out

    def delivered_to(self, user_id: str) -> list[str]:
        """Texts of ``messages_to(user_id)``: ``text`` for text messages, ``altText`` for flex,
        template and imagemap messages, ``"[type]"`` otherwise."""
        return [_message_text(m) for m in self.messages_to(user_id)]

    def max_rate_observed(self, endpoint: str, *, accepted_only: bool = False) -> int:
        """The largest number of requests to ``endpoint`` within any 1-second window (all
        attempts, or only 2xx answers with ``accepted_only=True``)."""
        return most_in_window(
            r.time for r in self.calls(endpoint, accepted=True if accepted_only else None)
        )

    # ---- request processing ----------------------------------------------------------------

    def _check_selector(self, selector: str) -> None:
        if "/" in selector or selector.lower() in _ALIASES:
            return
        known = {op.operation_id.lower() for op in _messaging_operations()}
        if selector.lower() not in known:
            raise ValueError(
                f"unknown LINE endpoint {selector!r}: use an operationId from messaging-api.yml, "
                f"one of {sorted(_ALIASES)}, or a path suffix like '/message/push'"
            )

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        with self._lock:
            try:
                response = self._process(request, body)
            except Exception as exc:  # a bug in the fake must be loud, not a silent 500
                self.violations.append(f"FakeLine internal error on {request.url.path}: {exc!r}")
                response = Response(
                    json.dumps({"message": f"FakeLine internal error: {exc!r}"}),
                    status_code=500,
                    media_type="application/json",
                )
            delay = self.delay
        if delay > 0:
            await asyncio.sleep(delay)
        await response(scope, receive, send)

    def _match(self, method: str, path: str) -> tuple[_Operation, dict[str, str]] | None:
        for op in self._operations:
            if op.method == method:
                m = op.regex.match(path)
                if m:
                    return op, m.groupdict()
        return None

    def _violation(self, rec: LineRequest, text: str) -> None:
        self.violations.append(f"{rec.method} {rec.path} ({rec.endpoint}): {text}")

    def _process(self, request: Request, body: bytes) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = request.url.path
        found = self._match(request.method, path)
        op, params = found if found else (None, {})
        rec = LineRequest(
            method=request.method,
            path=path,
            endpoint=op.operation_id if op else None,
            headers=headers,
            body=body,
            json=None,
            query=dict(request.query_params),
            time=self._clock(),
            request_id=str(uuid.uuid4()),
        )
        self.requests.append(rec)
        answer = self._answer(rec, op, params)
        rec.status = answer.status
        out_headers = {"x-line-request-id": rec.request_id, **answer.headers}
        if isinstance(answer.payload, bytes):
            content = answer.payload
        else:
            rec.response = {} if answer.payload is None else answer.payload
            content = json.dumps(rec.response, ensure_ascii=False).encode()
        return Response(
            content, status_code=answer.status, headers=out_headers, media_type=answer.content_type
        )

    def _answer(self, rec: LineRequest, op: _Operation | None, params: dict[str, str]) -> _Answer:
        if rec.headers.get("authorization") != f"Bearer {self.access_token}":
            return _error(401)
        if op is None:
            self._violation(rec, "no such endpoint in messaging-api.yml")
            return _error(404)
        invalid = self._validate(rec, op)
        if invalid is not None:
            return invalid
        for selector, per_second in self._rate_limits.items():
            if _selector_matches(selector, op.operation_id, rec.path):
                recent = 0
                for r in reversed(self.requests):
                    if r.time <= rec.time - 1.0:
                        break
                    recent += _selector_matches(selector, r.endpoint, r.path)
                if recent > per_second:
                    return _error(429)
        fault = next(
            (
                f
                for f in self._faults
                if f.remaining > 0 and _selector_matches(f.selector, op.operation_id, rec.path)
            ),
            None,
        )
        if fault is not None:
            fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining > 0]
            if not fault.after_delivery:
                return _error(fault.status, fault.message, fault.details)
        key = rec.retry_key
        if key is not None:
            first = self._retry_keys.get((op.operation_id, key))
            if first is not None and rec.time - first[0] < self.retry_key_ttl:
                payload: dict[str, Any] = {"message": _DEFAULT_MESSAGES[409]}
                if isinstance(first[1].response, dict) and "sentMessages" in first[1].response:
                    payload["sentMessages"] = first[1].response["sentMessages"]
                return _Answer(
                    409, payload, headers={"x-line-accepted-request-id": first[1].request_id}
                )
        handler = self._handlers.get(op.operation_id)
        if handler is None:
            return _error(501, f"FakeLine does not implement {op.operation_id}")
        answer = handler(rec, params)
        if 200 <= answer.status < 300:
            rec.delivered = op.operation_id in _DELIVERING
            if key is not None:
                self._retry_keys[(op.operation_id, key)] = (rec.time, rec)
        if fault is not None:  # after_delivery: processed, but answer with the error anyway
            return _error(fault.status, fault.message, fault.details)
        return answer

    def _validate(self, rec: LineRequest, op: _Operation) -> _Answer | None:
        """Header and body checks; returns the 4xx answer for an invalid request."""
        key = rec.retry_key
        if key is not None:
            problem = None
            if not op.retry_key:
                problem = f"X-Line-Retry-Key is not accepted by {op.operation_id}"
            elif not _UUID_RE.match(key):
                problem = f"X-Line-Retry-Key {key!r} is not a UUID"
            if problem:
                self._violation(rec, problem)
                return _error(
                    400,
                    "The request header has 1 error(s)",
                    [{"message": problem, "property": "X-Line-Retry-Key"}],
                )
        if op.json_schema is None:
            return None
        ctype = rec.headers.get("content-type", "")
        if "application/json" not in ctype.lower():
            self._violation(rec, f"Content-Type {ctype!r} is not application/json")
            return _error(415)
        try:
            rec.json = json.loads(rec.body.decode("utf-8")) if rec.body else None
        except (UnicodeDecodeError, ValueError) as exc:
            self._violation(rec, f"body is not JSON: {exc}")
            return _error(400, "The request body could not be parsed as JSON")
        if rec.json is None:
            self._violation(rec, "missing JSON body")
            return _error(
                400,
                "The request body has 1 error(s)",
                [{"message": "must be specified", "property": ""}],
            )
        errors = _schema_errors(_MESSAGING_SPEC, op.json_schema, rec.json)
        errors += self._semantic_errors(op.operation_id, rec.json)
        if errors:
            rec.errors = errors
            for e in errors:
                self._violation(rec, f"{e['property'] or '<body>'}: {e['message']}")
            return _error(400, f"The request body has {len(errors)} error(s)", errors)
        return None

    @staticmethod
    def _semantic_errors(operation_id: str, body: Any) -> list[dict[str, str]]:
        """Documented rules that the schema cannot express."""
        errors: list[dict[str, str]] = []
        if operation_id == "showLoadingAnimation" and isinstance(body, dict):
            seconds = body.get("loadingSeconds")
            if isinstance(seconds, int) and seconds % 5:
                errors.append({"message": "must be a multiple of 5", "property": "loadingSeconds"})
        return errors

    # ---- endpoint handlers (called under the lock) -----------------------------------------

    def _sent_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        sent = []
        for m in messages:
            self._message_seq += 1
            item = {"id": str(self._message_seq)}
            if m.get("type") in _QUOTABLE:
                item["quoteToken"] = secrets.token_urlsafe(24)
            sent.append(item)
        return sent

    def _ok(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        return _Answer(200, {})

    def _reply(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        token = self._reply_tokens.get(rec.json["replyToken"])
        if token is None or token.used or rec.time - token.issued > self.reply_token_ttl:
            return _error(400, "Invalid reply token")
        token.used = True
        rec.recipients = [token.user_id]
        return _Answer(200, {"sentMessages": self._sent_messages(rec.messages)})

    def _push(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        rec.recipients = [rec.json["to"]]
        return _Answer(200, {"sentMessages": self._sent_messages(rec.messages)})

    def _multicast(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        rec.recipients = list(rec.json["to"])
        return _Answer(200, {})

    def _broadcast(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        return _Answer(200, {})

    def _narrowcast(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        self._narrowcasts[rec.request_id] = time.time()
        return _Answer(202, {})

    def _narrowcast_progress(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        accepted = self._narrowcasts.get(rec.query.get("requestId", ""))
        if accepted is None:
            return _error(404)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(accepted))
        return _Answer(
            200,
            {
                "phase": "succeeded",
                "successCount": 0,
                "failureCount": 0,
                "targetCount": 0,
                "acceptedTime": stamp,
                "completedTime": stamp,
            },
        )

    def _get_profile(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        profile = self.profiles.get(params["userId"])
        if profile is None:
            return _error(404)
        return _Answer(200, {**profile, "userId": params["userId"]})

    def _get_bot_info(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        return _Answer(
            200,
            {
                "userId": self.bot_user_id,
                "basicId": "@000fake",
                "displayName": "Kigen (fake)",
                "chatMode": "bot",
                "markAsReadMode": "auto",
            },
        )

    def _get_message_content(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        mid = params["messageId"]
        data, ctype = self.contents.get(mid, (b"fake-line-content-" + mid.encode(), "image/jpeg"))
        return _Answer(200, data, content_type=ctype)

    def _show_loading(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        return _Answer(202, {})

    def _menu_problem(self, rich_menu_id: str, *, need_image: bool) -> _Answer | None:
        if rich_menu_id not in self.rich_menus:
            return _error(404, "richmenu not found")
        if need_image and rich_menu_id not in self.rich_menu_images:
            return _error(400, "must upload richmenu image before applying it to user")
        return None

    def _create_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        rich_menu_id = "richmenu-" + secrets.token_hex(16)
        self.rich_menus[rich_menu_id] = {**rec.json, "richMenuId": rich_menu_id}
        return _Answer(200, {"richMenuId": rich_menu_id})

    def _get_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        menu = self.rich_menus.get(params["richMenuId"])
        return _Answer(200, menu) if menu else _error(404, "richmenu not found")

    def _delete_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        rid = params["richMenuId"]
        if self.rich_menus.pop(rid, None) is None:
            return _error(404, "richmenu not found")
        self.rich_menu_images.pop(rid, None)
        self.user_rich_menus = {u: m for u, m in self.user_rich_menus.items() if m != rid}
        if self.default_rich_menu == rid:
            self.default_rich_menu = None
        return _Answer(200, {})

    def _list_rich_menus(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        return _Answer(200, {"richmenus": list(self.rich_menus.values())})

    def _set_rich_menu_image(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        rid = params["richMenuId"]
        ctype = rec.headers.get("content-type", "").split(";")[0].strip().lower()
        problem: tuple[int, str] | None = None
        if ctype not in _IMAGE_MAGIC:
            problem = (415, f"Content-Type {ctype!r} is not image/png or image/jpeg")
        elif len(rec.body) > RICH_MENU_IMAGE_MAX_BYTES:
            problem = (413, f"image has {len(rec.body)} bytes, at most 1 MB allowed")
        elif not rec.body.startswith(_IMAGE_MAGIC[ctype]):
            problem = (400, f"image bytes are not {ctype}")
        if problem:
            self._violation(rec, problem[1])
            return _error(problem[0], problem[1])
        if rid not in self.rich_menus:
            return _error(404, "richmenu not found")
        if rid in self.rich_menu_images:
            return _error(400, "An image has already been uploaded to the richmenu")
        self.rich_menu_images[rid] = (rec.body, ctype)
        return _Answer(200, {})

    def _get_rich_menu_image(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        image = self.rich_menu_images.get(params["richMenuId"])
        if image is None:
            return _error(404)
        return _Answer(200, image[0], content_type=image[1])

    def _set_default_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        problem = self._menu_problem(params["richMenuId"], need_image=True)
        if problem:
            return problem
        self.default_rich_menu = params["richMenuId"]
        return _Answer(200, {})

    def _get_default_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        if self.default_rich_menu is None:
            return _error(404, "no default richmenu")
        return _Answer(200, {"richMenuId": self.default_rich_menu})

    def _cancel_default_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        self.default_rich_menu = None
        return _Answer(200, {})

    def _link_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        problem = self._menu_problem(params["richMenuId"], need_image=True)
        if problem:
            return problem
        self.user_rich_menus[params["userId"]] = params["richMenuId"]
        return _Answer(200, {})

    def _unlink_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        self.user_rich_menus.pop(params["userId"], None)
        return _Answer(200, {})

    def _get_user_rich_menu(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        rid = self.user_rich_menus.get(params["userId"])
        return _Answer(200, {"richMenuId": rid}) if rid else _error(404, "the user has no richmenu")

    def _bulk_link(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        rid = rec.json["richMenuId"]
        problem = self._menu_problem(rid, need_image=True)
        if problem:
            return problem
        for user_id in rec.json["userIds"]:
            self.user_rich_menus[user_id] = rid
        return _Answer(202, {})

    def _bulk_unlink(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        for user_id in rec.json["userIds"]:
            self.user_rich_menus.pop(user_id, None)
        return _Answer(202, {})

    def _create_alias(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        alias, rid = rec.json["richMenuAliasId"], rec.json["richMenuId"]
        if rid not in self.rich_menus:
            return _error(400, "richmenu not found")
        if alias in self.rich_menu_aliases:
            return _error(400, "conflict richmenu alias id")
        self.rich_menu_aliases[alias] = rid
        return _Answer(200, {})

    def _update_alias(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        alias, rid = params["richMenuAliasId"], rec.json["richMenuId"]
        if alias not in self.rich_menu_aliases:
            return _error(400, "richmenu alias not found")
        if rid not in self.rich_menus:
            return _error(400, "richmenu not found")
        self.rich_menu_aliases[alias] = rid
        return _Answer(200, {})

    def _get_alias(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        alias = params["richMenuAliasId"]
        if alias not in self.rich_menu_aliases:
            return _error(404, "richmenu alias not found")
        return _Answer(200, {"richMenuAliasId": alias, "richMenuId": self.rich_menu_aliases[alias]})

    def _delete_alias(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        if self.rich_menu_aliases.pop(params["richMenuAliasId"], None) is None:
            return _error(400, "richmenu alias not found")
        return _Answer(200, {})

    def _list_aliases(self, rec: LineRequest, params: dict[str, str]) -> _Answer:
        aliases = [
            {"richMenuAliasId": a, "richMenuId": r} for a, r in self.rich_menu_aliases.items()
        ]
        return _Answer(200, {"aliases": aliases})


def _error(
    status: int, message: str | None = None, details: list[dict[str, str]] | None = None
) -> _Answer:
    payload: dict[str, Any] = {
        "message": message or _DEFAULT_MESSAGES.get(status, f"Error {status}")
    }
    if details:
        payload["details"] = details
    return _Answer(status, payload)


def _selector_matches(selector: str, operation_id: str | None, path: str) -> bool:
    if "/" in selector:
        return path.endswith(selector.rstrip("/"))
    target = _ALIASES.get(selector.lower(), selector)
    return operation_id is not None and operation_id.lower() == target.lower()


# --------------------------------------------------------------------------------------------
# Webhook sender
# --------------------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_webhook_event_id(ms: int | None = None) -> str:
    """A ULID-like id: 26 Crockford base32 characters, 48-bit millisecond time + 80 random bits."""
    value = ((int(time.time() * 1000) if ms is None else ms) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _message_id() -> str:
    return str(500_000_000_000_000_000 + secrets.randbelow(10**17))


class LineWebhookSender:
    """Builds, signs and POSTs LINE webhook bodies to the bot under test.

    Builders (``follow``, ``unfollow``, ``text``, ``postback``, ``sticker``, ``image``) return
    one event dict each, with a fresh ``webhookEventId``, ``mode: "active"``, a millisecond
    ``timestamp``, a user ``source`` and, except for unfollow, a ``replyToken``. With ``fake``
    given, reply tokens come from ``fake.issue_reply_token(user_id)``, so the fake accepts one
    reply to them.

    ``transport`` (e.g. ``httpx.ASGITransport(app=app)``) lets the sender call an ASGI app
    in-process instead of over the network; ``url`` must then still be absolute.
    """

    def __init__(
        self,
        url: str,
        channel_secret: str,
        destination: str | None = None,
        *,
        fake: FakeLine | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.channel_secret = channel_secret
        self.destination = destination or "U" + secrets.token_hex(16)
        self.fake = fake
        self.transport = transport
        self.timeout = timeout
        self.last_body: bytes | None = None

    # ---- builders --------------------------------------------------------------------------

    def _event(self, kind: str, user_id: str, *, replyable: bool = True) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": kind,
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user_id},
            "mode": "active",
            "webhookEventId": new_webhook_event_id(),
            "deliveryContext": {"isRedelivery": False},
        }
        if replyable:
            event["replyToken"] = (
                self.fake.issue_reply_token(user_id) if self.fake else secrets.token_hex(16)
            )
        return event

    def follow(self, user_id: str, *, is_unblocked: bool = False) -> dict[str, Any]:
        """A follow event (``is_unblocked=True``: the user unblocked the account)."""
        return {**self._event("follow", user_id), "follow": {"isUnblocked": is_unblocked}}

    def unfollow(self, user_id: str) -> dict[str, Any]:
        """An unfollow (block) event; it has no reply token."""
        return self._event("unfollow", user_id, replyable=False)

    def text(self, user_id: str, text: str) -> dict[str, Any]:
        """A text message event."""
        message = {
            "type": "text",
            "id": _message_id(),
            "text": text,
            "quoteToken": secrets.token_urlsafe(24),
        }
        return {**self._event("message", user_id), "message": message}

    def postback(
        self, user_id: str, data: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """A postback event; ``params`` as a datetime picker sends them, e.g.
        ``{"date": "2027-03-15"}``, ``{"time": "09:30"}``, ``{"datetime": "2027-03-15T09:30"}``."""
        postback: dict[str, Any] = {"data": data}
        if params is not None:
            postback["params"] = dict(params)
        return {**self._event("postback", user_id), "postback": postback}

    def sticker(
        self, user_id: str, package_id: str = "446", sticker_id: str = "1988"
    ) -> dict[str, Any]:
        """A sticker message event."""
        message = {
            "type": "sticker",
            "id": _message_id(),
            "packageId": package_id,
            "stickerId": sticker_id,
            "stickerResourceType": "STATIC",
            "quoteToken": secrets.token_urlsafe(24),
        }
        return {**self._event("message", user_id), "message": message}

    def image(self, user_id: str) -> dict[str, Any]:
        """An image message event (content provided by LINE; fetch it with get_message_content)."""
        message = {
            "type": "image",
            "id": _message_id(),
            "contentProvider": {"type": "line"},
            "quoteToken": secrets.token_urlsafe(24),
        }
        return {**self._event("message", user_id), "message": message}

    # ---- wire ------------------------------------------------------------------------------

    def payload(
        self, events: Mapping[str, Any] | Iterable[Mapping[str, Any]], *, redelivery: bool = False
    ) -> dict[str, Any]:
        """The ``CallbackRequest`` dict for ``events`` (one event or a list; ``[]`` is the
        console's "verify" body). ``redelivery=True`` marks copies as redelivered."""
        items = [events] if isinstance(events, Mapping) else list(events)
        items = [copy.deepcopy(dict(e)) for e in items]
        if redelivery:
            for e in items:
                e["deliveryContext"] = {"isRedelivery": True}
        return {"destination": self.destination, "events": items}

    def body(
        self, events: Mapping[str, Any] | Iterable[Mapping[str, Any]], *, redelivery: bool = False
    ) -> bytes:
        """The raw UTF-8 JSON bytes that ``post`` would send."""
        return json.dumps(self.payload(events, redelivery=redelivery), ensure_ascii=False).encode()

    def sign(self, body: bytes | str) -> str:
        """``base64(HMAC-SHA256(channel_secret, body))``, the ``X-Line-Signature`` value."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        mac = hmac.new(self.channel_secret.encode("utf-8"), raw, hashlib.sha256).digest()
        return base64.b64encode(mac).decode("ascii")

    async def post(
        self,
        events: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        *,
        signature: str | None = None,
        body_override: bytes | str | None = None,
        redelivery: bool = False,
    ) -> httpx.Response:
        """POST the events to ``url``. The exact bytes sent are signed, unless ``signature`` is
        given (sent as is, e.g. forged) or ``""`` (no ``X-Line-Signature`` header at all).
        ``body_override`` replaces the body (signed too, unless ``signature`` is given)."""
        if body_override is None:
            raw = self.body(events, redelivery=redelivery)
        else:
            raw = body_override.encode("utf-8") if isinstance(body_override, str) else body_override
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "LineBotWebhook/2.0",
        }
        sig = self.sign(raw) if signature is None else signature
        if sig:
            headers["X-Line-Signature"] = sig
        self.last_body = raw
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as client:
            return await client.post(self.url, content=raw, headers=headers)

    async def redeliver(self, event: Mapping[str, Any], **kwargs: Any) -> httpx.Response:
        """Re-POST ``event`` as LINE's redelivery does: same ``webhookEventId`` (and reply
        token), ``deliveryContext.isRedelivery`` true."""
        return await self.post([event], redelivery=True, **kwargs)
