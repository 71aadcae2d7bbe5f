"""Tests of the fake LINE Messaging API (tests/fakes/line.py), driven by the real line-bot-sdk."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    DatetimePickerAction,
    FlexContainer,
    FlexMessage,
    MulticastRequest,
    NarrowcastRequest,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    RichMenuArea,
    RichMenuBounds,
    RichMenuRequest,
    RichMenuSize,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
)
from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.fakes.line import (
    MONTHLY_LIMIT_MESSAGE,
    FakeLine,
    LineWebhookSender,
    messaging_body_errors,
    spec_available,
    spec_missing_reason,
    webhook_body_errors,
)

pytestmark = pytest.mark.skipif(not spec_available(), reason=spec_missing_reason())

USER = "U" + "1" * 32
OTHER = "U" + "2" * 32
SECRET = "test-channel-secret"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLine]:
    with FakeLine() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLine) -> FakeLine:
    server.reset()
    return server


@pytest.fixture
async def client(fake: FakeLine) -> AsyncIterator[AsyncApiClient]:
    cfg = Configuration(host=fake.base_url, access_token=fake.access_token)
    async with AsyncApiClient(cfg) as api_client:  # must be created inside a running loop
        yield api_client


@pytest.fixture
def api(client: AsyncApiClient) -> AsyncMessagingApi:
    return AsyncMessagingApi(client)


async def raw_post(fake: FakeLine, path: str, body: Any, **headers: str) -> httpx.Response:
    """POST a JSON body the SDK models would refuse to build."""
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        return await http.post(
            path,
            content=json.dumps(body),
            headers={
                "Authorization": f"Bearer {fake.access_token}",
                "Content-Type": "application/json",
                **headers,
            },
        )


def text(t: str = "hi") -> TextMessage:
    return TextMessage(text=t)


# ---- pushes, validation ----------------------------------------------------------------------


async def test_push_with_quick_reply_validates_and_is_recorded(fake: FakeLine, api):
    message = TextMessage(
        text="When should I remind you?",
        quick_reply=QuickReply(
            items=[
                QuickReplyItem(
                    action=PostbackAction(label="Cancel", data="act=cancel", display_text="Cancel")
                ),
                QuickReplyItem(
                    action=DatetimePickerAction(
                        label="Pick a date",
                        data="act=date",
                        mode="date",
                        min="2027-01-01",
                        max="2027-12-31",
                    )
                ),
            ]
        ),
    )
    key = str(uuid.uuid4())
    res = await api.push_message_with_http_info(
        PushMessageRequest(to=USER, messages=[message]), x_line_retry_key=key
    )

    assert res.status_code == 200
    assert res.data.sent_messages[0].id.isdigit()
    assert res.data.sent_messages[0].quote_token
    fake.assert_no_violations()
    [push] = fake.pushes()
    assert push.accepted and push.retry_key == key
    assert res.headers["x-line-request-id"] == push.request_id
    picker = push.json["messages"][0]["quickReply"]["items"][1]["action"]
    assert picker == {
        "type": "datetimepicker",
        "label": "Pick a date",
        "data": "act=date",
        "mode": "date",
        "min": "2027-01-01",
        "max": "2027-12-31",
    }
    assert push.json["notificationDisabled"] is False  # the SDK always sends it
    assert push.headers["authorization"] == f"Bearer {fake.access_token}"
    assert fake.delivered_to(USER) == ["When should I remind you?"]
    assert fake.delivered_to(OTHER) == []


@pytest.mark.parametrize(
    ("messages", "prop"),
    [
        ([{"type": "text", "text": f"m{i}"} for i in range(6)], "messages"),
        ([{"type": "text"}], "messages[0].text"),
        (
            [
                {
                    "type": "text",
                    "text": "x",
                    "quickReply": {
                        "items": [
                            {
                                "type": "action",
                                "action": {"type": "datetimepicker", "data": "d", "mode": "week"},
                            }
                        ]
                    },
                }
            ],
            "messages[0].quickReply.items[0].action.mode",
        ),
        ([{"type": "txt", "text": "x"}], "messages[0].type"),
    ],
    ids=["six-messages", "text-without-text", "picker-mode-week", "unknown-message-type"],
)
async def test_invalid_push_is_a_violation_answered_400(fake: FakeLine, messages, prop):
    res = await raw_post(fake, "/v2/bot/message/push", {"to": USER, "messages": messages})

    assert res.status_code == 400
    body = res.json()
    assert body["message"] == "The request body has 1 error(s)", body
    assert [d["property"] for d in body["details"]] == [prop]
    assert res.headers["x-line-request-id"]
    assert len(fake.violations) == 1 and prop in fake.violations[0]
    assert fake.delivered_to(USER) == []
    with pytest.raises(AssertionError, match="1 LINE API violation"):
        fake.assert_no_violations()


def test_discriminator_descends_and_dedupes():
    assert messaging_body_errors("Message", {"type": "text", "text": "ok"}) == []
    assert messaging_body_errors("Message", {"type": "text"}) == [
        {"message": "must be specified", "property": "text"}
    ]
    # The quick reply is checked by both Message and TextMessage(allOf Message): reported once.
    errors = messaging_body_errors(
        "Message", {"type": "text", "text": "x", "quickReply": {"items": "nope"}}
    )
    assert errors == [{"message": "'nope' is not of type 'array'", "property": "quickReply.items"}]


def test_a_body_of_a_known_shape_is_answered_as_the_full_validation_would():
    def push(to: Any, data: Any, label: Any = "Stop") -> dict[str, Any]:
        action = {"type": "postback", "label": label, "data": data}
        item = {"type": "action", "action": action}
        message = {"type": "text", "text": "hi", "quickReply": {"items": [item]}}
        return {"to": to, "messages": [message]}

    schema = "PushMessageRequest"
    assert messaging_body_errors(schema, push(USER, "stop:1")) == []
    # The same shape for another resident and expiry is accepted without the full check.
    assert messaging_body_errors(schema, push("U" + "2" * 32, "stop:2")) == []
    # What the quick checks do not accept is validated in full: the same answer as a
    # first sight of the body would get.
    action = "messages[0].quickReply.items[0].action"
    assert messaging_body_errors(schema, push(USER, "x" * 301)) == [
        {"message": "has length 301, at most 300 allowed", "property": f"{action}.data"}
    ]
    assert messaging_body_errors(schema, push(USER, 7)) == [
        {"message": "7 is not of type 'string'", "property": f"{action}.data"}
    ]
    assert messaging_body_errors(schema, push(USER, "stop:4", label=5)) == [
        {"message": "5 is not of type 'string'", "property": f"{action}.label"}
    ]


async def test_multicast_limit_500_ids(fake: FakeLine, api):
    ids = [f"U{i:032x}" for i in range(501)]
    await api.multicast(MulticastRequest(to=ids[:500], messages=[text("to 500")]))
    res = await raw_post(
        fake, "/v2/bot/message/multicast", {"to": ids, "messages": [{"type": "text", "text": "x"}]}
    )

    assert res.status_code == 400
    assert res.json()["details"] == [
        {"message": "has 501 items, at most 500 allowed", "property": "to"}
    ]
    assert [m.status for m in fake.multicasts()] == [200, 400]
    assert fake.delivered_to(ids[0]) == ["to 500"]
    assert fake.delivered_to(ids[500]) == []
    assert len(fake.violations) == 1


async def test_flex_bubble_validates_and_bad_layout_is_flagged(fake: FakeLine, api):
    bubble = {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {"type": "text", "text": "Residence card expires in 30 days", "wrap": True},
                {
                    "type": "button",
                    "action": {"type": "postback", "label": "Remind me", "data": "r=1"},
                },
            ],
        },
    }
    await api.push_message(
        PushMessageRequest(
            to=USER,
            messages=[FlexMessage(alt_text="Reminder", contents=FlexContainer.from_dict(bubble))],
        )
    )
    fake.assert_no_violations()
    assert fake.delivered_to(USER) == ["Reminder"]

    bad = json.loads(json.dumps(bubble))
    bad["body"]["layout"] = "diagonal"
    res = await raw_post(
        fake,
        "/v2/bot/message/push",
        {"to": USER, "messages": [{"type": "flex", "altText": "Reminder", "contents": bad}]},
    )
    assert res.status_code == 400
    assert res.json()["details"][0]["property"] == "messages[0].contents.body.layout"
    assert "diagonal" in fake.violations[0]
    assert fake.delivered_to(USER) == ["Reminder"]


# ---- retry keys, faults, auth, rate limits ---------------------------------------------------


async def test_same_retry_key_twice_is_409_and_one_delivery(fake: FakeLine, api):
    key = str(uuid.uuid4())
    request = PushMessageRequest(to=USER, messages=[text("once")])
    first = await api.push_message_with_http_info(request, x_line_retry_key=key)
    with pytest.raises(ApiException) as exc:
        await api.push_message(request, x_line_retry_key=key)

    assert exc.value.status == 409
    assert exc.value.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    body = json.loads(exc.value.body)
    assert body["message"] == "The retry key is already accepted"
    assert body["sentMessages"] == [m.to_dict() for m in first.data.sent_messages]
    assert fake.delivered_to(USER) == ["once"]
    # Keys are per endpoint, and a new key is a new delivery.
    await api.multicast(MulticastRequest(to=[USER], messages=[text("multi")]), x_line_retry_key=key)
    await api.push_message(request, x_line_retry_key=str(uuid.uuid4()))
    assert fake.delivered_to(USER) == ["once", "multi", "once"]
    fake.assert_no_violations()


async def test_malformed_retry_key_and_retry_key_on_reply_are_violations(fake: FakeLine, api):
    with pytest.raises(ApiException) as exc:
        await api.push_message(
            PushMessageRequest(to=USER, messages=[text()]), x_line_retry_key="retry-1"
        )
    assert exc.value.status == 400
    token = fake.issue_reply_token(USER)
    res = await raw_post(
        fake,
        "/v2/bot/message/reply",
        {"replyToken": token, "messages": [{"type": "text", "text": "x"}]},
        **{"X-Line-Retry-Key": str(uuid.uuid4())},
    )
    assert res.status_code == 400
    assert len(fake.violations) == 2
    assert "not a UUID" in fake.violations[0]
    assert "not accepted by replyMessage" in fake.violations[1]
    assert fake.delivered_to(USER) == []


async def test_injected_429_and_500_surface_as_api_exceptions(fake: FakeLine, api):
    request = PushMessageRequest(to=USER, messages=[text("hello")])
    fake.fail_next("push", 429)
    fake.fail_next("/message/push", 429, message=MONTHLY_LIMIT_MESSAGE)
    fake.fail_next("pushMessage", 500)
    with pytest.raises(ApiException) as e1:
        await api.push_message(request)
    with pytest.raises(ApiException) as e2:
        await api.push_message(request)
    with pytest.raises(ApiException) as e3:
        await api.push_message(request)
    await api.push_message(request)  # faults are used up

    assert (e1.value.status, json.loads(e1.value.body)) == (429, {"message": "Too many requests"})
    assert json.loads(e2.value.body)["message"] == "You have reached your monthly limit."
    assert e3.value.status == 500
    assert [p.status for p in fake.pushes()] == [429, 429, 500, 200]
    assert fake.delivered_to(USER) == ["hello"]
    with pytest.raises(ValueError, match="unknown LINE endpoint"):
        fake.fail_next("pushMesage", 500)


async def test_500_after_delivery_then_retry_is_409_and_delivered_once(fake: FakeLine, api):
    key = str(uuid.uuid4())
    request = PushMessageRequest(to=USER, messages=[text("exactly once")])
    fake.fail_next("push", 500, after_delivery=True)
    with pytest.raises(ApiException) as first:
        await api.push_message(request, x_line_retry_key=key)
    with pytest.raises(ApiException) as retry:
        await api.push_message(request, x_line_retry_key=key)

    assert (first.value.status, retry.value.status) == (500, 409)
    assert fake.delivered_to(USER) == ["exactly once"]


async def test_wrong_token_is_401(fake: FakeLine):
    cfg = Configuration(host=fake.base_url, access_token="wrong")
    async with AsyncApiClient(cfg) as bad_client:
        with pytest.raises(ApiException) as exc:
            await AsyncMessagingApi(bad_client).push_message(
                PushMessageRequest(to=USER, messages=[text()])
            )
    assert exc.value.status == 401
    assert json.loads(exc.value.body)["message"].startswith("Authentication failed")
    assert [p.status for p in fake.pushes()] == [401]
    assert fake.delivered_to(USER) == []


async def test_rate_limit_and_max_rate_observed(fake: FakeLine, api):
    fake.rate_limit("push", 3)
    results = await asyncio.gather(
        *(
            api.push_message(PushMessageRequest(to=USER, messages=[text(f"m{i}")]))
            for i in range(5)
        ),
        return_exceptions=True,
    )

    refused = [r for r in results if isinstance(r, ApiException)]
    assert [r.status for r in refused] == [429, 429]
    assert len(fake.delivered_to(USER)) == 3
    assert fake.max_rate_observed("push") == 5
    assert fake.max_rate_observed("push", accepted_only=True) == 3
    assert fake.max_rate_observed("multicast") == 0


async def test_delay_timeout_still_delivers_so_retry_key_matters(fake: FakeLine, api):
    key = str(uuid.uuid4())
    request = PushMessageRequest(to=USER, messages=[text("slow")])
    fake.delay = 0.3
    with pytest.raises(asyncio.TimeoutError):
        await api.push_message(request, x_line_retry_key=key, _request_timeout=0.05)
    fake.delay = 0
    with pytest.raises(ApiException) as exc:
        await api.push_message(request, x_line_retry_key=key)
    assert exc.value.status == 409
    assert fake.delivered_to(USER) == ["slow"]


# ---- replies and webhooks --------------------------------------------------------------------


async def test_reply_token_is_single_use_and_must_be_known(fake: FakeLine, api):
    sender = LineWebhookSender("http://bot.invalid/callback", SECRET, fake=fake)
    event = sender.text(USER, "hello")
    reply = ReplyMessageRequest(reply_token=event["replyToken"], messages=[text("hi there")])
    res = await api.reply_message(reply)
    assert res.sent_messages[0].id

    for token in (event["replyToken"], "0" * 32):  # used, then unknown
        with pytest.raises(ApiException) as exc:
            await api.reply_message(
                ReplyMessageRequest(reply_token=token, messages=[text("again")])
            )
        assert exc.value.status == 400
        assert json.loads(exc.value.body) == {"message": "Invalid reply token"}
    assert [r.status for r in fake.replies()] == [200, 400, 400]
    assert fake.delivered_to(USER) == ["hi there"]
    fake.assert_no_violations()  # a bad token is a runtime condition, not a schema violation


async def test_reply_token_and_retry_key_expire_by_clock():
    now = [1000.0]
    with FakeLine(reply_token_ttl=60, clock=lambda: now[0]) as fake:
        cfg = Configuration(host=fake.base_url, access_token=fake.access_token)
        async with AsyncApiClient(cfg) as c:
            api = AsyncMessagingApi(c)
            fresh, stale = fake.issue_reply_token(USER), fake.issue_reply_token(USER)
            key = str(uuid.uuid4())
            await api.push_message(
                PushMessageRequest(to=USER, messages=[text("a")]), x_line_retry_key=key
            )
            now[0] += 30
            await api.reply_message(ReplyMessageRequest(reply_token=fresh, messages=[text("b")]))
            now[0] += 24 * 3600
            with pytest.raises(ApiException) as exc:
                await api.reply_message(
                    ReplyMessageRequest(reply_token=stale, messages=[text("c")])
                )
            await api.push_message(
                PushMessageRequest(to=USER, messages=[text("a")]), x_line_retry_key=key
            )  # 24 h later the key is forgotten
    assert exc.value.status == 400
    assert fake.delivered_to(USER) == ["a", "b", "a"]


def make_receiver(parsed: list[Any]):
    """A minimal bot webhook endpoint: verifies the signature with the SDK's parser."""
    parser = WebhookParser(SECRET)

    async def app(scope, receive, send):
        request = Request(scope, receive)
        body = (await request.body()).decode("utf-8")
        try:
            parsed.append(
                parser.parse(body, request.headers.get("x-line-signature", ""), as_payload=True)
            )
            response = JSONResponse({})
        except InvalidSignatureError:
            response = JSONResponse({"error": "bad signature"}, status_code=400)
        await response(scope, receive, send)

    return app


async def test_webhook_sender_bodies_validate_sign_and_parse(fake: FakeLine):
    parsed: list[Any] = []
    sender = LineWebhookSender(
        "http://bot.test/callback",
        SECRET,
        fake=fake,
        transport=httpx.ASGITransport(app=make_receiver(parsed)),
    )
    events = [
        sender.follow(USER),
        sender.text(USER, "在留カードの期限は?"),
        sender.postback(USER, "act=remind&id=12", params={"date": "2027-03-15"}),
        sender.sticker(USER),
        sender.image(USER),
        sender.unfollow(USER),
    ]
    assert webhook_body_errors(sender.payload(events)) == []
    assert webhook_body_errors(sender.payload([])) == []
    # The validator is not vacuous: a text message without text is caught.
    broken = json.loads(json.dumps(events[1]))
    del broken["message"]["text"]
    assert webhook_body_errors(sender.payload([broken])) == [
        {"message": "must be specified", "property": "events[0].message.text"}
    ]

    res = await sender.post(events)
    assert res.status_code == 200
    payload = parsed[-1]
    assert payload.destination == sender.destination and len(sender.destination) == 33
    kinds = [type(e) for e in payload.events]
    assert kinds == [
        FollowEvent,
        MessageEvent,
        PostbackEvent,
        MessageEvent,
        MessageEvent,
        UnfollowEvent,
    ]
    assert isinstance(payload.events[1].message, TextMessageContent)
    assert payload.events[1].message.text == "在留カードの期限は?"
    assert payload.events[2].postback.params == {"date": "2027-03-15"}
    assert isinstance(payload.events[3].message, StickerMessageContent)
    assert isinstance(payload.events[4].message, ImageMessageContent)
    ids = [e["webhookEventId"] for e in events]
    assert len(set(ids)) == 6
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    assert all(not e.delivery_context.is_redelivery and e.mode == "active" for e in payload.events)
    assert payload.events[0].reply_token == events[0]["replyToken"]

    res = await sender.redeliver(events[1])
    assert res.status_code == 200
    [again] = parsed[-1].events
    assert again.webhook_event_id == events[1]["webhookEventId"]
    assert again.delivery_context.is_redelivery is True

    count = len(parsed)
    assert (await sender.post(events, signature="Zm9yZ2Vk")).status_code == 400
    assert (await sender.post(events, signature="")).status_code == 400
    tampered = sender.body(events).replace("期限".encode(), "期間".encode())
    assert (
        await sender.post(
            events, body_override=tampered, signature=sender.sign(sender.body(events))
        )
    ).status_code == 400
    assert len(parsed) == count
    with pytest.raises(InvalidSignatureError):
        WebhookParser(SECRET).parse(sender.body(events).decode(), "Zm9yZ2Vk")


# ---- rich menus and other endpoints ----------------------------------------------------------


async def test_rich_menu_create_upload_link(fake: FakeLine, api, client):
    blob = AsyncMessagingApiBlob(client)
    menu = RichMenuRequest(
        size=RichMenuSize(width=2500, height=843),
        selected=True,
        name="main",
        chat_bar_text="Menu",
        areas=[
            RichMenuArea(
                bounds=RichMenuBounds(x=0, y=0, width=1250, height=843),
                action=PostbackAction(data="menu=cards"),
            )
        ],
    )
    await api.validate_rich_menu_object(menu)
    rich_menu_id = (await api.create_rich_menu(menu)).rich_menu_id

    with pytest.raises(ApiException) as early:  # LINE refuses a menu without an image
        await api.link_rich_menu_id_to_user(USER, rich_menu_id)
    with pytest.raises(ApiException) as gif:
        await blob.set_rich_menu_image(
            rich_menu_id, body=b"GIF89a", _headers={"Content-Type": "image/gif"}
        )
    await blob.set_rich_menu_image(rich_menu_id, body=PNG, _headers={"Content-Type": "image/png"})
    await api.link_rich_menu_id_to_user(USER, rich_menu_id)
    await api.set_default_rich_menu(rich_menu_id)

    assert (early.value.status, gif.value.status) == (400, 415)
    assert fake.rich_menu_images[rich_menu_id] == (PNG, "image/png")
    assert (await api.get_rich_menu_id_of_user(USER)).rich_menu_id == rich_menu_id
    assert bytes(await blob.get_rich_menu_image(rich_menu_id)) == PNG
    [listed] = (await api.get_rich_menu_list()).richmenus
    assert (listed.rich_menu_id, listed.chat_bar_text) == (rich_menu_id, "Menu")
    assert fake.default_rich_menu == rich_menu_id
    assert fake.violations == [
        f"POST /v2/bot/richmenu/{rich_menu_id}/content (setRichMenuImage): "
        "Content-Type 'image/gif' is not image/png or image/jpeg"
    ]

    await api.unlink_rich_menu_id_from_user(USER)
    await api.delete_rich_menu(rich_menu_id)
    assert fake.user_rich_menus == {} and fake.rich_menus == {}


async def test_profile_loading_content_narrowcast_and_unknown_path(fake: FakeLine, api, client):
    fake.add_profile(USER, "Ana", language="pt-BR")
    profile = await api.get_profile(USER)
    assert (profile.display_name, profile.user_id, profile.language) == ("Ana", USER, "pt-BR")
    with pytest.raises(ApiException) as missing:
        await api.get_profile(OTHER)
    assert missing.value.status == 404

    await api.show_loading_animation(ShowLoadingAnimationRequest(chat_id=USER, loading_seconds=10))
    with pytest.raises(ApiException):  # the model allows 7; LINE wants a multiple of 5
        await api.show_loading_animation(
            ShowLoadingAnimationRequest(chat_id=USER, loading_seconds=7)
        )

    fake.contents["42"] = (b"\xff\xd8\xffjpeg", "image/jpeg")
    assert (
        bytes(await AsyncMessagingApiBlob(client).get_message_content("42")) == b"\xff\xd8\xffjpeg"
    )

    res = await api.narrowcast_with_http_info(NarrowcastRequest(messages=[text("all")]))
    assert res.status_code == 202
    progress = await api.get_narrowcast_progress(res.headers["x-line-request-id"])
    assert progress.phase == "succeeded"

    res404 = await raw_post(fake, "/v2/bot/message/pussh", {})
    assert res404.status_code == 404
    assert [v.split(":")[0] for v in fake.violations] == [
        "POST /v2/bot/chat/loading/start (showLoadingAnimation)",
        "POST /v2/bot/message/pussh (None)",
    ]
