"""Tests of the fake Telegram Bot API server (tests/fakes/telegram.py).

Most of them drive it with the real python-telegram-bot ``Bot`` over HTTP, so they also pin
down what PTB puts on the wire; raw httpx is used for calls PTB would never make.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.fakes import telegram as fake_module
from tests.fakes.telegram import (
    SPEC_PATH,
    BackgroundServer,
    FakeTelegram,
    parse_html,
    post_update,
    spec_available,
)

pytestmark = pytest.mark.skipif(
    not spec_available(),
    reason=f"Telegram Bot API spec not found at {SPEC_PATH} (set KIGEN_SPECS_DIR)",
)

TOKEN = "123456:TEST-token"
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="r:12:ok")]])


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    # timedelta retry_after without PTBDeprecationWarning; never send 127.0.0.1 to a proxy.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def fake_server():
    # One server per module (starting/stopping uvicorn costs ~0.2 s); reset between tests.
    with FakeTelegram(token=TOKEN) as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeTelegram):
    fake_server.reset()
    yield fake_server
    fake_server.assert_no_violations()


@pytest.fixture
async def bot(fake: FakeTelegram):
    async with Bot(fake.token, base_url=fake.base_url) as b:
        yield b


def raw_post(fake: FakeTelegram, method: str, **kwargs) -> httpx.Response:
    with httpx.Client(trust_env=False) as client:
        return client.post(fake.method_url_prefix + method, **kwargs)


# --- basics ---------------------------------------------------------------------------------


async def test_get_me(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == fake.bot_username
    # `async with bot` already called getMe once (Bot.initialize).
    calls = fake.calls("getMe")
    assert [c.status for c in calls] == [200, 200]
    assert calls[0].params == {}


async def test_send_message_with_inline_keyboard_is_valid_and_recorded(
    fake: FakeTelegram, bot: Bot
) -> None:
    first = await bot.send_message(chat_id=42, text="Hello", reply_markup=KEYBOARD)
    second = await bot.send_message(chat_id=42, text="Again", disable_notification=True)

    assert second.message_id == first.message_id + 1
    assert first.chat.id == 42
    assert first.chat.type == "private"
    assert first.text == "Hello"
    assert first.reply_markup == KEYBOARD
    assert isinstance(first.date, dtm.datetime)

    rec = fake.calls("sendMessage")[0]
    # Form values arrive as strings / JSON strings and are decoded by declared type.
    assert rec.params == {
        "chat_id": 42,
        "text": "Hello",
        "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": "r:12:ok"}]]},
    }
    assert fake.calls("sendMessage")[1].params["disable_notification"] is True
    assert rec.status == 200
    assert rec.timestamp <= fake.calls("sendMessage")[1].timestamp
    assert fake.sent_texts(42) == ["Hello", "Again"]
    assert fake.sent_texts(43) == []
    assert fake.violations == []


async def test_json_and_get_requests_are_accepted(fake: FakeTelegram) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "url": "https://example.org"}]]}
    body = {"chat_id": 7, "text": "json", "reply_markup": markup}
    resp = raw_post(fake, "sendMessage", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["reply_markup"] == markup
    with httpx.Client(trust_env=False) as client:
        me = client.get(fake.method_url_prefix + "getMe")
    assert me.json()["result"]["username"] == fake.bot_username
    assert fake.calls("getMe")[0].http_method == "GET"


async def test_unimplemented_methods_and_set_result(fake: FakeTelegram, bot: Bot) -> None:
    assert await bot.leave_chat(chat_id=-100123) is True  # valid but not modelled: True
    fake.set_result("getChatMemberCount", lambda params: 3 if params["chat_id"] == -100 else 1)
    assert await bot.get_chat_member_count(chat_id=-100) == 3
    assert await bot.get_chat_member_count(chat_id=5) == 1


# --- validation -----------------------------------------------------------------------------


async def test_too_long_text_is_bad_request_and_violation(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(chat_id=1, text="x" * 4096)  # the limit itself is fine
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(chat_id=1, text="x" * 4097)
    violations = fake.pop_violations()
    assert len(violations) == 1
    assert violations[0].startswith("sendMessage: ")
    assert "4097" in violations[0]
    assert [c.status for c in fake.calls("sendMessage")] == [200, 400]
    assert fake.sent_texts(1) == ["x" * 4096]


async def test_callback_data_limit_counts_bytes(fake: FakeTelegram, bot: Bot) -> None:
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="é" * 32)]])  # 64 bytes
    await bot.send_message(chat_id=1, text="ok", reply_markup=ok)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(chat_id=1, text="bad", reply_markup=too_long)
    (violation,) = fake.pop_violations()
    assert "reply_markup.inline_keyboard[0][0].callback_data" in violation
    assert "66 bytes" in violation


async def test_html_parse_mode_is_checked_and_stripped(fake: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_message(chat_id=1, text="<b>Bold</b> &lt;3 &amp; more", parse_mode="HTML")
    assert msg.text == "Bold <3 & more"
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(chat_id=1, text="1 < 2", parse_mode="HTML")
    assert len(fake.pop_violations()) == 1


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<b>x</b>", None),
        ('<a href="https://t.me/x">link</a> <tg-spoiler>s</tg-spoiler>', None),
        ("<b>x", "Can't find end tag"),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("line<br>break", 'Unsupported start tag "br"'),
        ("a < b", "unexpected '<'"),
    ],
)
def test_parse_html(text: str, error: str | None) -> None:
    _plain, found = parse_html(text)
    if error is None:
        assert found is None
    else:
        assert found is not None and error in found


TOO_MANY_COMMANDS = json.dumps([{"command": f"c{i}", "description": "d"} for i in range(101)])
BUTTON_WITHOUT_ACTION = json.dumps({"inline_keyboard": [[{"text": "OK"}]]})
BUTTON_INT_DATA = json.dumps({"inline_keyboard": [[{"text": "OK", "callback_data": 5}]]})
ONE_COMMAND = json.dumps([{"command": "remind", "description": "Remind me"}])


@pytest.mark.parametrize(
    ("method", "data", "expected"),
    [
        ("sendMessage", {"chat_id": "1", "text": "hi", "txt": "x"}, "unknown parameter 'txt'"),
        ("sendMessage", {"chat_id": "1"}, "parameter 'text' is required"),
        ("sendMessage", {"text": "hi"}, "parameter 'chat_id' is required"),
        ("sendMessage", {"chat_id": "1", "text": "hi", "disable_notification": "yes"}, "Boolean"),
        (
            "sendMessage",
            {"chat_id": "1", "text": "hi", "message_thread_id": "abc"},
            "message_thread_id: expected Integer, got str",
        ),
        (
            "sendMessage",
            {"chat_id": "1", "text": "hi", "reply_markup": BUTTON_INT_DATA},
            "reply_markup.inline_keyboard[0][0].callback_data: expected String, got int",
        ),
        (
            "sendMessage",
            {"chat_id": "1", "text": "hi", "reply_markup": BUTTON_WITHOUT_ACTION},
            "exactly one action field",
        ),
        (
            "sendMessage",
            {"chat_id": "1", "text": "hi", "reply_markup": '{"keyboard": 1}'},
            "reply_markup",
        ),
        ("sendMessage", {"chat_id": "1", "text": "hi", "parse_mode": "XML"}, "parse_mode"),
        ("sendMessage", {"chat_id": "1", "text": ""}, "message text is empty"),
        (
            "setMyCommands",
            {"commands": ONE_COMMAND, "scope": '{"type": "everyone"}'},
            "scope.type: 'everyone' is not a BotCommandScope",
        ),
        (
            "setMyCommands",
            {"commands": ONE_COMMAND, "scope": '{"type": "chat"}'},
            "scope.chat_id: required field of BotCommandScopeChat is missing",
        ),
        (
            "setMyCommands",
            {"commands": json.dumps([{"command": "Remind-Me", "description": "x"}])},
            "BOT_COMMAND_INVALID",
        ),
        (
            "setMyCommands",
            {"commands": json.dumps([{"command": "x", "description": ""}])},
            "description: must be 1-256 characters",
        ),
        (
            "setMyCommands",
            {"commands": TOO_MANY_COMMANDS},
            "too many commands: 101",
        ),
        ("setMyCommands", {"commands": '[{"command": "x"}]'}, "commands[0].description"),
        ("answerCallbackQuery", {"callback_query_id": "1", "text": "a" * 201}, "max 200"),
        ("editMessageText", {"text": "new"}, "chat_id and message_id are required"),
        ("setWebhook", {"url": "http://x", "secret_token": "no spaces!"}, "secret_token"),
        ("getUpdates", {"limit": "0"}, "limit must be 1-100"),
    ],
)
def test_invalid_calls_are_rejected_and_recorded(
    fake: FakeTelegram, method: str, data: dict[str, str], expected: str
) -> None:
    resp = raw_post(fake, method, data=data)
    assert resp.status_code == 400
    body = resp.json()
    assert body["ok"] is False
    assert body["error_code"] == 400
    assert body["description"].startswith("Bad Request: ")
    violations = fake.pop_violations()
    assert violations, "the invalid call was not recorded as a violation"
    assert all(v.startswith(f"{method}: ") for v in violations)
    assert any(expected in v for v in violations), violations
    assert [c.status for c in fake.calls(method)] == [400]


def test_wrong_token_unknown_method_and_content_type(fake: FakeTelegram) -> None:
    with httpx.Client(trust_env=False) as client:
        resp = client.post(f"{fake.base_url}999:OTHER-token/getMe")
    assert resp.status_code == 401
    assert resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert fake.violations == []  # a wrong token is PTB's InvalidToken, not a bad call

    resp = raw_post(fake, "sendMesage", data={"chat_id": "1", "text": "hi"})
    assert resp.status_code == 404  # Telegram's answer to an unknown method
    assert resp.json()["description"] == "Not Found"
    assert fake.pop_violations() == ["sendMesage: unknown method 'sendMesage'"]

    resp = raw_post(fake, "sendMessage", content=b"hi", headers={"content-type": "text/plain"})
    assert resp.status_code == 400
    assert "content type" in resp.json()["description"]
    assert len(fake.pop_violations()) == 1


def test_assert_no_violations_fails_on_violation(fake: FakeTelegram) -> None:
    raw_post(fake, "sendMessage", data={"chat_id": "1"})
    with pytest.raises(AssertionError, match="parameter 'text' is required"):
        fake.assert_no_violations()
    fake.clear()
    fake.assert_no_violations()
    assert fake.requests == []


def test_builders_produce_spec_valid_updates(fake: FakeTelegram) -> None:
    updates = [
        fake.make_message_update(5, "hi", language_code="ja"),
        fake.make_command_update(5, "remind", "tomorrow"),
        fake.make_callback_update(5, "r:1:ok", message_id=3),
        fake.make_my_chat_member_update(5, status="kicked"),
        fake.make_my_chat_member_update(-1001234, status="member", user_id=9),
    ]
    for update in updates:
        assert fake.spec.check_type("Update", update) == [], update
    ids = [u["update_id"] for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert updates[1]["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 7}]
    assert updates[3]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    # The validator is not vacuous:
    assert fake.spec.check_type("Update", {"update_id": 1, "message": {"text": "x"}})
    assert fake.spec.check_type("BotCommandScopeDefault", {"type": "chat"}) == [
        "$.type: must be 'default' for BotCommandScopeDefault, got 'chat'"
    ]


def test_spec_path_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("KIGEN_SPECS_DIR", str(tmp_path))
    assert fake_module._default_spec_path() == tmp_path / "telegram" / "api.json"
    with pytest.raises(FileNotFoundError, match="KIGEN_SPECS_DIR"):
        FakeTelegram(spec_path=tmp_path / "telegram" / "api.json")


# --- commands, documents, edits -------------------------------------------------------------


async def test_set_my_commands_with_scope_and_language(fake: FakeTelegram, bot: Bot) -> None:
    commands = [BotCommand("remind", "Set a reminder"), BotCommand("help", "Help")]
    assert await bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code="ja")
    await bot.set_my_commands([("start", "Start")], scope=BotCommandScopeChat(chat_id=42))

    rec = fake.calls("setMyCommands")[0]
    assert rec.params == {
        "commands": [
            {"command": "remind", "description": "Set a reminder"},
            {"command": "help", "description": "Help"},
        ],
        "scope": {"type": "default"},
        "language_code": "ja",
    }
    got = await bot.get_my_commands(scope=BotCommandScopeDefault(), language_code="ja")
    assert [c.command for c in got] == ["remind", "help"]
    assert await bot.get_my_commands() == ()  # nothing set for (default, no language)
    assert fake.commands_for({"type": "chat", "chat_id": 42}) == [
        {"command": "start", "description": "Start"}
    ]
    await bot.delete_my_commands(scope=BotCommandScopeDefault(), language_code="ja")
    assert fake.commands_for(language_code="ja") == []

    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([("Remind", "Upper case is not allowed")])
    assert len(fake.pop_violations()) == 1


async def test_send_document_records_bytes(fake: FakeTelegram, bot: Bot) -> None:
    content = b"%PDF-1.4\n% residence card reminder\n"
    msg = await bot.send_document(
        chat_id=42, document=content, filename="card.pdf", caption="Your card"
    )
    assert msg.document.file_name == "card.pdf"
    assert msg.document.file_size == len(content)
    assert msg.caption == "Your card"
    rec = fake.calls("sendDocument")[0]
    assert rec.files == {"document": ("card.pdf", content, "application/pdf")}
    assert rec.params["document"].content == content
    assert rec.params["chat_id"] == 42

    # Re-sending by file_id is a plain string parameter.
    again = await bot.send_document(chat_id=42, document=msg.document.file_id)
    assert again.message_id == msg.message_id + 1
    assert fake.calls("sendDocument")[1].files == {}


async def test_send_media_group_uploads_by_attach(fake: FakeTelegram, bot: Bot) -> None:
    media = [
        InputMediaDocument(b"first", filename="a.txt", caption="A"),
        InputMediaDocument(b"second", filename="b.txt"),
    ]
    messages = await bot.send_media_group(chat_id=42, media=media)
    assert [m.caption for m in messages] == ["A", None]
    rec = fake.calls("sendMediaGroup")[0]
    # PTB names these parts "attached<uuid>" and refers to them as attach://<name>.
    refs = [item["media"].removeprefix("attach://") for item in rec.params["media"]]
    assert [rec.files[ref][:2] for ref in refs] == [("a.txt", b"first"), ("b.txt", b"second")]


async def test_edits_and_callback_answers(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(chat_id=42, text="Remind you?", reply_markup=KEYBOARD)
    edited = await bot.edit_message_text("Done", chat_id=42, message_id=sent.message_id)
    assert edited.text == "Done"
    assert edited.reply_markup is None  # Telegram drops the keyboard when none is passed
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Done", chat_id=42, message_id=sent.message_id)
    markup = await bot.edit_message_reply_markup(
        chat_id=42, message_id=sent.message_id, reply_markup=KEYBOARD
    )
    assert markup.reply_markup == KEYBOARD
    assert await bot.answer_callback_query("cb-1", text="Saved")

    with pytest.raises(BadRequest, match=r"(?i)max 200"):
        await bot.answer_callback_query("cb-2", text="x" * 201)
    assert len(fake.pop_violations()) == 1  # "not modified" is an API error, not a violation


# --- fault injection ------------------------------------------------------------------------


async def test_injected_429_raises_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as exc_info:
        await bot.send_message(chat_id=1, text="hi")
    assert exc_info.value.retry_after == dtm.timedelta(seconds=7)
    rec = fake.calls("sendMessage")[0]
    assert rec.status == 429
    assert rec.response["description"] == "Too Many Requests: retry after 7"
    assert rec.response["parameters"] == {"retry_after": 7}
    # Only the next call failed.
    await bot.send_message(chat_id=1, text="hi")
    assert fake.sent_texts() == ["hi"]


async def test_injected_403_and_blocked_chat(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", 403)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(chat_id=1, text="hi")

    fake.block_chat(77)
    for _ in range(3):
        with pytest.raises(Forbidden):
            await bot.send_message(chat_id=77, text="still blocked")
    await bot.send_message(chat_id=78, text="other chat works")
    assert fake.sent_texts() == ["other chat works"]
    fake.unblock_chat(77)
    await bot.send_message(chat_id=77, text="back")


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [(400, BadRequest, "chat not found"), (500, NetworkError, "Internal Server Error")],
)
async def test_other_injected_errors(
    fake: FakeTelegram, bot: Bot, status: int, error: type[Exception], text: str
) -> None:
    fake.fail_next("*", status, times=2, chat_id=5)
    await bot.send_message(chat_id=6, text="not targeted")
    for _ in range(2):
        with pytest.raises(error, match=f"(?i){text}") as exc_info:
            await bot.send_message(chat_id=5, text="targeted")
        assert type(exc_info.value) is error
    await bot.send_message(chat_id=5, text="recovered")
    assert fake.sent_texts() == ["not targeted", "recovered"]


async def test_delay_makes_client_time_out_but_message_is_sent(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.delay = 0.3
    with pytest.raises(TimedOut):
        await bot.send_message(chat_id=1, text="slow", read_timeout=0.05)
    fake.delay = 0
    assert fake.sent_texts() == ["slow"]


# --- rate limiting --------------------------------------------------------------------------


async def test_global_rate_limit_answers_429(fake: FakeTelegram, bot: Bot) -> None:
    fake.rate_limit(per_second=3, per_chat_per_second=None)
    for chat in (1, 2, 3):
        await bot.send_message(chat_id=chat, text="ok")
    with pytest.raises(RetryAfter) as exc_info:
        await bot.send_message(chat_id=4, text="one too many")
    assert exc_info.value.retry_after == dtm.timedelta(seconds=1)
    assert fake.max_rate_observed() == 4  # rejected attempts count too
    assert len(fake.sent_texts()) == 3


async def test_per_chat_rate_limit(fake: FakeTelegram, bot: Bot) -> None:
    fake.rate_limit(per_second=30, per_chat_per_second=1)
    await bot.send_message(chat_id=7, text="first")
    with pytest.raises(RetryAfter):
        await bot.send_message(chat_id=7, text="second")
    await bot.send_message(chat_id=8, text="other chat")
    assert fake.max_rate_observed(chat_id=7) == 2
    assert fake.max_rate_observed(chat_id=8) == 1


async def test_max_rate_observed_uses_a_sliding_window(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(chat_id=1, text="a")
    await bot.send_message(chat_id=2, text="b")
    await bot.send_chat_action(chat_id=1, action="typing")  # not a message
    await asyncio.sleep(1.05)
    await bot.send_message(chat_id=1, text="c")
    await bot.send_message(chat_id=2, text="d")
    assert fake.max_rate_observed() == 2
    assert fake.max_rate_observed(window=5.0) == 4


# --- updates and webhooks -------------------------------------------------------------------


async def test_get_updates_returns_pushed_updates_and_honours_offset(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.push_update(fake.make_message_update(42, "hello"))
    fake.push_update(fake.make_callback_update(42, "r:1:ok", message_id=1))
    updates = await bot.get_updates()
    assert [u.effective_chat.id for u in updates] == [42, 42]
    assert updates[0].message.text == "hello"
    assert updates[0].message.from_user.language_code == "en"
    assert updates[1].callback_query.data == "r:1:ok"

    # Not confirmed yet: the same updates come again.
    assert len(await bot.get_updates()) == 2
    last = updates[-1].update_id
    assert await bot.get_updates(offset=last + 1) == ()
    fake.push_update(fake.make_command_update(42, "start"))
    (third,) = await bot.get_updates(offset=last + 1)
    assert third.message.text == "/start"
    assert third.update_id > last

    # allowed_updates filters update types.
    fake.push_update(fake.make_callback_update(42, "x", message_id=1))
    fake.push_update(fake.make_message_update(42, "only me"))
    got = await bot.get_updates(offset=third.update_id + 1, allowed_updates=["message"])
    assert [u.message.text for u in got] == ["only me"]


async def test_get_updates_long_polls_until_an_update_arrives(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    assert not poll.done()  # nothing to return yet: the call waits
    fake.push_update(fake.make_message_update(42, "wake up"))
    # The update ends the wait: without it the call would take the whole 5 s.
    (update,) = await asyncio.wait_for(poll, 3)
    assert update.message.text == "wake up"


async def test_ptb_application_polls_and_answers(fake: FakeTelegram) -> None:
    seen: list[str] = []

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.message.text)
        await update.message.reply_text(f"<b>{len(seen)}</b>", reply_markup=KEYBOARD)

    app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).build()
    app.add_handler(MessageHandler(filters.TEXT, on_text))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        fake.push_update(fake.make_message_update(42, "hello"))
        await fake.wait_for_calls("sendMessage", timeout=3)
        await app.updater.stop()
        await app.stop()
    assert seen == ["hello"]
    assert fake.sent_texts(42) == ["<b>1</b>"]
    assert fake.calls("deleteWebhook"), "start_polling removes any webhook first"


async def test_clear_ends_stale_long_polls(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    fake.clear()  # e.g. the next test starts while an old poller is still waiting
    fake.push_update(fake.make_message_update(42, "for the next poller"))
    assert await asyncio.wait_for(poll, 1) == ()
    assert fake.requests == []  # the stale call is not recorded after clear()
    (update,) = await bot.get_updates()
    assert update.message.text == "for the next poller"


async def test_post_update_reaches_webhook_app_with_secret(fake: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str | None, dict]] = []
    app = FastAPI()

    @app.post("/webhook/telegram")
    async def webhook(request: Request) -> Response:
        secret = request.headers.get("x-telegram-bot-api-secret-token")
        if secret != "s3cret_token-1":
            return Response(status_code=403)
        received.append((secret, await request.json()))
        return Response(status_code=200)

    with BackgroundServer(app) as hook_server:
        url = f"{hook_server.url}/webhook/telegram"
        update = fake.make_message_update(42, "via webhook")

        denied = await post_update(url, update)
        assert denied.status_code == 403

        assert await bot.set_webhook(url, secret_token="s3cret_token-1")
        assert fake.webhook["url"] == url
        assert (await bot.get_webhook_info()).url == url
        with pytest.raises(Conflict):
            await bot.get_updates()

        resp = await fake.post_to_registered_webhook(update)
        assert resp.status_code == 200
        resp = await post_update(url, update, secret_token="s3cret_token-1")
        assert resp.status_code == 200

    assert received == [("s3cret_token-1", update)] * 2
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
