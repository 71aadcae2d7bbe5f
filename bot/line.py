"""LINE: line-bot-sdk v3 turns webhook events into Incoming, replies into messages.

The adapter only translates. Choices become quick-reply buttons (at most 13 with labels
of at most 20 characters; longer lists and the reminder list become a Flex bubble); a
date request becomes a date picker; replies use the reply token while it is valid and
push otherwise, and go to the outbox when LINE does not take them; outbox messages are
pushed with a retry key derived from the row.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from linebot.v3 import WebhookParser
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    DatetimePickerAction,
    FlexContainer,
    FlexMessage,
    Message,
    MulticastRequest,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.webhook import SignatureValidator
from linebot.v3.webhooks import (
    Event as LineEvent,
)
from linebot.v3.webhooks import (
    FollowEvent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
    UserSource,
)

from core import dates
from core.clock import Clock
from core.config import Settings
from core.conversation import Conversation
from core.flows.reminders import DATE_PICKER_LABEL
from core.i18n import Catalogs
from core.messages import Choice, Event, Incoming, Reply, split_text
from core.outbox import Outcome, SendResult
from core.ratelimit import RateLimiter

log = logging.getLogger(__name__)

CHANNEL = "line"
MAX_MESSAGES_PER_CALL = 5
MAX_TEXT = 5000
MAX_QUICK_REPLIES = 13
MAX_QUICK_LABEL = 20
MAX_BUTTON_LABEL = 40
MAX_ALT_TEXT = 400
#: A reply token is guaranteed for about a minute; after this, push instead.
REPLY_TOKEN_LIFETIME = timedelta(seconds=50)
REQUEST_TIMEOUT = 10
LINE_API = "https://api.line.me"
#: Connections kept for replies and pushes to residents besides the outbox's calls.
REPLY_CONNECTIONS = 32
RETRY_KEY_NAMESPACE = uuid.UUID("6f1c3f0e-4a55-4c1b-9a57-6b6967656e00")
JST = ZoneInfo("Asia/Tokyo")


async def open_api(settings: Settings, stack: AsyncExitStack) -> AsyncMessagingApi:
    """The Messaging API client; closed with ``stack``. Must run inside the event loop."""
    configuration = Configuration(
        host=settings.line_api_url,
        access_token=settings.line_channel_access_token.get_secret_value(),
    )
    # The SDK's default is 5 per CPU: on two cores, 10 calls at once, so with answers
    # 200 ms away at most 50 a second.
    configuration.connection_pool_maxsize = LineSender.in_flight + REPLY_CONNECTIONS
    # Without a host of ours the SDK calls api.line.me and api-data.line.me: one decision.
    configuration.proxy = environment_proxy(configuration.host or LINE_API)
    client = await stack.enter_async_context(AsyncApiClient(configuration))
    # line-bot-sdk's session trusts the environment: on every call aiohttp reads the proxy
    # variables and looks for ~/.netrc in a worker thread, 14 % of the server's CPU per
    # webhook event. Its connector moves to a session that does not; the proxy was read
    # once, above.
    rest = client.rest_client
    sdk_session = rest.pool_manager
    rest.pool_manager = aiohttp.ClientSession(connector=sdk_session.connector, trust_env=False)
    sdk_session.detach()
    return AsyncMessagingApi(client)


def environment_proxy(url: str) -> str | None:
    """The proxy that HTTPS_PROXY, HTTP_PROXY and NO_PROXY name for ``url``, if any."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def retry_key(key: str) -> str:
    """A stable X-Line-Retry-Key for a message: a resend after a crash repeats it, so LINE
    drops the copy."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, key))


class Renderer:
    """Turns replies into LINE message objects."""

    def __init__(self, catalogs: Catalogs, clock: Clock) -> None:
        self.catalogs = catalogs
        self.clock = clock

    def messages(self, replies: Sequence[Reply]) -> list[Message]:
        rendered: list[Message] = []
        for reply in replies:
            rendered += self.reply(reply)
        return rendered

    def reply(self, reply: Reply) -> list[Message]:
        text = reply.text
        if reply.document is not None and reply.document.url:
            text = f"{text}\n{reply.document.url}"
        elif reply.document is not None and reply.document.media_type == "application/json":
            text = f"{text}\n\n{reply.document.content.decode('utf-8')}"
        if reply.choices and (
            reply.intent == "reminder:list" or not _fits_quick_reply(reply.choices)
        ):
            return [_flex(text, reply.choices)]
        pieces = split_text(text, MAX_TEXT)
        messages: list[Message] = [TextMessage(text=piece) for piece in pieces[:-1]]
        quick = self._quick_reply(reply)
        messages.append(TextMessage(text=pieces[-1], quick_reply=quick))
        return messages

    def _quick_reply(self, reply: Reply) -> QuickReply | None:
        items = [
            QuickReplyItem(action=PostbackAction(label=c.label, data=c.id, display_text=c.label))
            for c in reply.choices
        ]
        if reply.date_request:
            today = self.clock.now().astimezone(JST).date()
            earliest, latest = dates.accepted_range(today)
            label = self.catalogs.translator(reply.language).gettext(DATE_PICKER_LABEL)
            picker = DatetimePickerAction(
                label=label[:MAX_QUICK_LABEL],
                data="date:picked",
                mode="date",
                initial=(earliest + timedelta(days=365)).isoformat(),
                min=earliest.isoformat(),
                max=latest.isoformat(),
            )
            items.append(QuickReplyItem(action=picker))
        return QuickReply(items=items) if items else None


def _fits_quick_reply(choices: Sequence[Choice]) -> bool:
    return len(choices) <= MAX_QUICK_REPLIES and all(
        len(c.label) <= MAX_QUICK_LABEL for c in choices
    )


def _flex(text: str, choices: Sequence[Choice]) -> FlexMessage:
    """A bubble with the text and one button per choice."""
    buttons = [
        {
            "type": "button",
            "style": "link",
            "height": "sm",
            "action": {
                "type": "postback",
                "label": c.label[:MAX_BUTTON_LABEL],
                "data": c.id,
                "displayText": c.label,
            },
        }
        for c in choices
    ]
    bubble = {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [{"type": "text", "text": text[:MAX_TEXT], "wrap": True}],
        },
        "footer": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": buttons},
    }
    return FlexMessage(alt_text=text[:MAX_ALT_TEXT], contents=FlexContainer.from_dict(bubble))


def incoming_from_event(event: LineEvent) -> Incoming | None:
    """The Incoming an event stands for, or None for events Kigen does not handle."""
    if not isinstance(event.source, UserSource) or not event.source.user_id:
        return None
    user_id = event.source.user_id
    if isinstance(event, FollowEvent):
        return Incoming(CHANNEL, user_id, event=Event.FOLLOW)
    if isinstance(event, UnfollowEvent):
        return Incoming(CHANNEL, user_id, event=Event.UNFOLLOW)
    if isinstance(event, MessageEvent):
        if isinstance(event.message, TextMessageContent):
            return Incoming.from_text(CHANNEL, user_id, event.message.text)
        return Incoming(CHANNEL, user_id, event=Event.UNSUPPORTED)
    if isinstance(event, PostbackEvent):
        params = event.postback.params or {}
        if "date" in params:
            try:
                picked = date.fromisoformat(params["date"])
            except ValueError:
                return None
            return Incoming(CHANNEL, user_id, picked_date=picked)
        return Incoming(CHANNEL, user_id, choice=event.postback.data)
    return None


class WebhookRejected(Exception):
    """The body is not a LINE webhook; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class LineBridge:
    """Verifies and handles webhook bodies, answering through the Messaging API."""

    def __init__(
        self,
        api: AsyncMessagingApi,
        conversation: Conversation,
        renderer: Renderer,
        channel_secret: str,
        *,
        rich_menus: dict[str, str] | None = None,
    ) -> None:
        self.api = api
        self.conversation = conversation
        self.renderer = renderer
        self._validator = SignatureValidator(channel_secret)
        self._parser = WebhookParser(channel_secret, skip_signature_verification=lambda: True)
        self.rich_menus = rich_menus or {}

    def verify(self, body: bytes, signature: str | None) -> None:
        """Raise :class:`WebhookRejected` unless ``signature`` signs ``body`` (constant time)."""
        if not signature:
            raise WebhookRejected(400, "missing X-Line-Signature")
        try:
            valid = self._validator.validate(body.decode("utf-8"), signature)
        except (UnicodeDecodeError, ValueError):
            valid = False
        if not valid:
            raise WebhookRejected(401, "bad signature")

    async def process(self, body: bytes) -> None:
        """Handle every event of a verified body."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise WebhookRejected(400, "body is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            raise WebhookRejected(400, "not a LINE webhook")
        try:
            events = self._parser.parse(body.decode("utf-8"), "")
        except Exception as error:  # the SDK's models refuse a malformed event
            raise WebhookRejected(400, f"malformed events: {type(error).__name__}") from None
        for event in events:
            try:
                await self._handle(event)
            except Exception:
                log.exception("handling a LINE event failed")

    async def _handle(self, event: LineEvent) -> None:
        event_id = getattr(event, "webhook_event_id", None)
        incoming = incoming_from_event(event)
        if incoming is None:
            return
        if incoming.event == Event.FOLLOW:
            incoming = Incoming(
                CHANNEL,
                incoming.user_id,
                event=Event.FOLLOW,
                language_hint=await self._profile_language(incoming.user_id),
            )
        try:
            replies = await self.conversation.handle(incoming, event_id=event_id)
        except Exception:
            log.exception("the conversation failed on a LINE event")
            replies = [await self.conversation.error_reply(CHANNEL, incoming.user_id)]
        if not replies:
            return
        await self._answer(event, incoming.user_id, replies, event_id or "")
        language_set = next((r.language for r in replies if r.intent == "language:set"), None)
        if language_set and language_set in self.rich_menus:
            await self._link_menu(incoming.user_id, self.rich_menus[language_set])

    async def _answer(self, event: LineEvent, user_id: str, replies: list[Reply], key: str) -> None:
        """Reply with the token while it is valid, push otherwise. What LINE does not take
        for a passing reason (an outage, a timeout, 429) is queued, to be pushed later."""
        token = getattr(event, "reply_token", None)
        if time.time() - event.timestamp / 1000 >= REPLY_TOKEN_LIFETIME.total_seconds():
            token = None
        rendered = [self.renderer.reply(reply) for reply in replies]
        messages = [message for reply_messages in rendered for message in reply_messages]
        owner = [index for index, reply_messages in enumerate(rendered) for _ in reply_messages]
        for number, start in enumerate(range(0, len(messages), MAX_MESSAGES_PER_CALL)):
            batch = messages[start : start + MAX_MESSAGES_PER_CALL]
            try:
                await self._reply_or_push(
                    user_id, batch, token if number == 0 else None, key, number
                )
            except (ApiException, TimeoutError, aiohttp.ClientError) as error:
                result = result_of_failure(error)
                if result.outcome == Outcome.SENT:
                    continue
                if result.outcome != Outcome.RETRY:
                    raise
                log.warning("LINE did not take an answer (%s); it is queued", result.error)
                # Whole replies, from the one this batch starts in: should its first
                # messages have gone in the batch before, they arrive twice rather than
                # the reply arriving cut. So may the batch itself after a timeout (LINE may
                # have taken it; a reply call has no retry key): twice rather than never.
                await self.conversation.deliver_later(CHANNEL, user_id, replies[owner[start] :])
                return

    async def _reply_or_push(
        self, user_id: str, batch: list[Message], token: str | None, key: str, number: int
    ) -> None:
        if token:
            try:
                await self.api.reply_message(
                    ReplyMessageRequest(reply_token=token, messages=batch),
                    _request_timeout=REQUEST_TIMEOUT,
                )
                return
            except ApiException as error:
                log.info("reply failed (%s), pushing instead", error.status)
        await self.api.push_message(
            PushMessageRequest(to=user_id, messages=batch),
            x_line_retry_key=retry_key(f"{key}:{number}"),
            _request_timeout=REQUEST_TIMEOUT,
        )

    async def _profile_language(self, user_id: str) -> str | None:
        try:
            profile = await self.api.get_profile(user_id, _request_timeout=REQUEST_TIMEOUT)
        except (TimeoutError, ApiException, aiohttp.ClientError):
            return None
        return profile.language

    async def _link_menu(self, user_id: str, rich_menu_id: str) -> None:
        try:
            await self.api.link_rich_menu_id_to_user(
                user_id, rich_menu_id, _request_timeout=REQUEST_TIMEOUT
            )
        except (TimeoutError, ApiException, aiohttp.ClientError) as error:
            log.warning("could not link the rich menu: %s", getattr(error, "status", error))


#: Seconds a sender waits after LINE answered 429 (LINE gives no Retry-After).
RATE_LIMIT_PAUSE = 1.0


class LineSender:
    """Pushes outbox messages. The retry key makes a repeat after a crash harmless
    (LINE answers 409, which counts as sent). Calls are paced below LINE's rate limits
    (push 2,000 and multicast 200 requests per second per channel by default)."""

    channel = CHANNEL
    idempotent = True
    max_recipients = 500  # a multicast call
    #: Calls on their way at once: 200 multicasts/s with answers up to 300 ms away.
    in_flight = 64

    def __init__(self, api: AsyncMessagingApi, renderer: Renderer, settings: Settings) -> None:
        self.api = api
        self.renderer = renderer
        self.push_limiter = RateLimiter(settings.line_push_rate)
        self.multicast_limiter = RateLimiter(settings.line_multicast_rate)

    async def send(
        self, recipients: Sequence[str], replies: Sequence[Reply], *, key: str
    ) -> SendResult:
        """A push to one resident, a multicast to several (all in one language); five
        messages per call, each call with a retry key of its own."""
        messages = self.renderer.messages(replies)
        for number, start in enumerate(range(0, len(messages), MAX_MESSAGES_PER_CALL)):
            batch = messages[start : start + MAX_MESSAGES_PER_CALL]
            result = await self._call(recipients, batch, key if number == 0 else f"{key}:{number}")
            if result.outcome != Outcome.SENT:
                return result
        return SendResult(Outcome.SENT)

    async def _call(
        self, recipients: Sequence[str], messages: list[Message], key: str
    ) -> SendResult:
        limiter = self.push_limiter if len(recipients) == 1 else self.multicast_limiter
        try:
            await limiter.acquire()
            if len(recipients) == 1:
                await self.api.push_message(
                    PushMessageRequest(to=recipients[0], messages=messages),
                    x_line_retry_key=retry_key(key),
                    _request_timeout=REQUEST_TIMEOUT,
                )
            else:
                # Built without validation: the 500 ids are LINE's own, and pydantic checking
                # each of them again took a third of the CPU of sending a broadcast.
                await self.api.multicast(
                    MulticastRequest.construct(to=list(recipients), messages=messages),
                    x_line_retry_key=retry_key(key),
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except (ApiException, TimeoutError, aiohttp.ClientError) as error:
            if isinstance(error, ApiException) and error.status == 429:
                # LINE counts refused attempts too: going on at full pace would prolong it.
                limiter.pause(RATE_LIMIT_PAUSE)
            return result_of_failure(error)
        return SendResult(Outcome.SENT)


def result_of_failure(error: ApiException | TimeoutError | aiohttp.ClientError) -> SendResult:
    """How a failed call to the Messaging API counts: an error answer or no answer."""
    if isinstance(error, ApiException):
        return result_of_error(error)
    return SendResult(Outcome.RETRY, error=f"network: {type(error).__name__}")


def result_of_error(error: ApiException) -> SendResult:
    """How an error answer of the Messaging API counts for the outbox."""
    reason = _error_message(error)
    if error.status == 409:
        return SendResult(Outcome.SENT)  # this retry key was already accepted
    if error.status == 429:
        log.warning("LINE answered 429 (rate limit or the monthly message quota): %s", reason)
        return SendResult(Outcome.RETRY, error=f"429 {reason}"[:300])
    if error.status is not None and 400 <= error.status < 500:
        return SendResult(Outcome.FAILED, error=f"{error.status} {reason}"[:300])
    return SendResult(Outcome.RETRY, error=f"{error.status} {reason}"[:300])


def _error_message(error: ApiException) -> str:
    try:
        body: Any = json.loads(error.body or "{}")
    except ValueError:
        return str(error.reason)
    return str(body.get("message", error.reason)) if isinstance(body, dict) else str(error.reason)
