"""Telegram: python-telegram-bot turns updates into Incoming, replies into messages.

The adapter only translates. Choices become inline keyboards (the pressed keyboard is
folded into its message, showing what was chosen); a date request becomes a reply field
with a date placeholder; documents are sent as files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from core.config import Settings
from core.conversation import Conversation
from core.flows.help import command_menu
from core.i18n import Catalogs
from core.messages import Choice, Event, Incoming, Reply, split_text
from core.outbox import Outcome, SendResult
from core.ratelimit import RateLimiter, fastest_within

log = logging.getLogger(__name__)

CHANNEL = "telegram"
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
#: Telegram's command menus take ISO 639-1 codes only: one menu per code.
MENU_LANGUAGES = {
    "ja": "ja", "zh-Hans": "zh", "ko": "ko", "vi": "vi", "fil": "tl", "ne": "ne",
    "pt-BR": "pt", "es": "es", "id": "id", "th": "th", "my": "my",
}  # fmt: skip
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
GONE_ERRORS = ("chat not found", "user is deactivated", "bot was blocked")
#: Seconds within which Telegram answers a call from most servers: by default the sender
#: keeps the rate's worth of that many messages on their way.
ANSWER_WITHIN = 0.3


def build_application(settings: Settings, *, polling: bool = False) -> Application:
    """A python-telegram-bot Application for Kigen's bot (no handlers yet)."""
    if settings.telegram_token is None:
        raise RuntimeError("KIGEN_TELEGRAM_TOKEN is not set")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_api_url.replace("/bot", "/file/bot"))
    )
    if not polling:
        builder = builder.updater(None)
    # PTB's own pool (256) is for replies to residents; the outbox's calls come on top.
    builder = builder.connection_pool_size(256 + in_flight(settings))
    return builder.build()


def pace(settings: Settings) -> float:
    """Messages per second the outbox sends to Telegram: ``KIGEN_TELEGRAM_RATE``, or with
    paid broadcasts as close to their 1,000 per second as the pacing allows."""
    return fastest_within(1000) if settings.telegram_paid_broadcast else settings.telegram_rate


def in_flight(settings: Settings) -> int:
    """Outbox messages on their way to Telegram at once (``KIGEN_TELEGRAM_IN_FLIGHT``, or
    the rate's worth of :data:`ANSWER_WITHIN`)."""
    return settings.telegram_in_flight or math.ceil(pace(settings) * ANSWER_WITHIN)


def incoming_from_update(update: Update) -> Incoming | None:
    """The Incoming an update stands for, or None for updates Kigen does not handle."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return None
    user_id = str(chat.id)
    hint = update.effective_user.language_code if update.effective_user else None
    if update.my_chat_member is not None:
        status = update.my_chat_member.new_chat_member.status
        if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            return Incoming(CHANNEL, user_id, event=Event.UNFOLLOW)
        return Incoming(CHANNEL, user_id, event=Event.FOLLOW, language_hint=hint)
    if update.callback_query is not None:
        data = update.callback_query.data or ""
        return Incoming(CHANNEL, user_id, choice=data, language_hint=hint)
    if update.message is not None:
        if update.message.text:
            return Incoming.from_text(CHANNEL, user_id, update.message.text, language_hint=hint)
        return Incoming(CHANNEL, user_id, event=Event.UNSUPPORTED, language_hint=hint)
    return None


def keyboard(choices: Sequence[Choice]) -> InlineKeyboardMarkup:
    """Buttons two to a row when the labels are short, one to a row otherwise."""
    per_row = 2 if all(len(choice.label) <= 16 for choice in choices) else 1
    buttons = [InlineKeyboardButton(c.label, callback_data=c.id) for c in choices]
    return InlineKeyboardMarkup([buttons[i : i + per_row] for i in range(0, len(buttons), per_row)])


def sendings(replies: Sequence[Reply]) -> list[Reply]:
    """The replies as Telegram gets them, a file apart from its text: what did not go out
    is queued from there on, so a text that went out is not sent again for its file."""
    parts = []
    for reply in replies:
        if reply.document is not None and reply.text:
            parts.append(replace(reply, document=None))
            parts.append(replace(reply, text="", choices=(), date_request=False))
        else:
            parts.append(reply)
    return parts


async def send_replies(bot: Bot, chat_id: int | str, replies: Sequence[Reply], **options) -> None:
    """Send replies as messages: long texts split, choices on the last piece."""
    for reply in replies:
        pieces = split_text(reply.text, MessageLimit.MAX_TEXT_LENGTH) if reply.text else []
        for index, piece in enumerate(pieces):
            markup = None
            if index == len(pieces) - 1 and reply.choices:
                markup = keyboard(reply.choices)
            elif index == len(pieces) - 1 and reply.date_request:
                markup = ForceReply(input_field_placeholder="2027-03-15")
            await bot.send_message(
                chat_id, piece, reply_markup=markup, link_preview_options=NO_PREVIEW, **options
            )
        if reply.document is not None:
            document = InputFile(reply.document.content, filename=reply.document.filename)
            await bot.send_document(chat_id, document, **options)


def seconds_of(period: int | timedelta) -> float:
    """A time period of python-telegram-bot in seconds: a timedelta where PTB_TIMEDELTA is
    set, an int (deprecated) otherwise."""
    return period.total_seconds() if isinstance(period, timedelta) else float(period)


async def fold_keyboard(query: CallbackQuery) -> None:
    """Replace the pressed keyboard with the chosen label, so old buttons cannot be
    pressed twice and the chat shows what was chosen."""
    message = query.message
    if message is None or not getattr(message, "text", None):
        return
    markup = getattr(message, "reply_markup", None)
    labels = [
        b.text
        for row in (markup.inline_keyboard if markup else ())
        for b in row
        if b.callback_data == query.data
    ]
    text = f"{message.text}\n\n» {labels[0]}" if labels else message.text
    if len(text) > MessageLimit.MAX_TEXT_LENGTH:
        text = message.text
    try:
        await query.edit_message_text(text, link_preview_options=NO_PREVIEW)
    except TelegramError as error:  # the message is too old to edit, Telegram is down...
        log.info("could not fold a keyboard: %s", error.message)


async def stop_spinner(query: CallbackQuery) -> None:
    """Answer a pressed button (which stops its spinner); cosmetic, so a failure is only
    logged and the press is still handled."""
    try:
        await query.answer()
    except TelegramError as error:
        log.info("could not answer a button press: %s", error.message)


class TelegramBridge:
    """Connects the Application's updates to the conversation."""

    def __init__(self, application: Application, conversation: Conversation) -> None:
        self.application = application
        self.conversation = conversation
        application.add_handler(TypeHandler(Update, self.on_update))
        application.add_error_handler(self.on_error)

    async def on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        event_id = f"{self.application.bot.id}:{update.update_id}"
        if not await self.conversation.first_time(CHANNEL, event_id):
            return
        query = update.callback_query
        if query is not None:
            await stop_spinner(query)
        incoming = incoming_from_update(update)
        if incoming is None:
            return
        replies = await self.conversation.handle(incoming)
        if query is not None:
            await fold_keyboard(query)
        parts = sendings(replies)
        for index, part in enumerate(parts):
            try:
                await send_replies(self.application.bot, incoming.user_id, [part])
            except TelegramError as error:
                result = result_of_failure(error)
                if result.outcome != Outcome.RETRY:
                    raise
                log.warning("Telegram did not take an answer (%s); it is queued", result.error)
                await self.conversation.deliver_later(
                    CHANNEL,
                    incoming.user_id,
                    parts[index:],
                    after=timedelta(seconds=result.retry_after or 0.0),
                )
                return

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("handling a Telegram update failed", exc_info=context.error)
        if isinstance(update, Update) and (incoming := incoming_from_update(update)):
            reply = await self.conversation.error_reply(CHANNEL, incoming.user_id)
            try:
                await send_replies(self.application.bot, incoming.user_id, [reply])
            except TelegramError:
                log.warning("could not tell the resident about the failure")

    async def process(self, payload: dict) -> None:
        """Handle one update delivered to the webhook; :class:`ValueError` when the payload
        is not an update."""
        try:
            update = Update.de_json(payload, self.application.bot)
        except Exception as error:  # the library's models refuse a malformed update
            raise ValueError(f"not a Telegram update: {type(error).__name__}") from None
        await self.application.process_update(update)

    async def publish_commands(self, catalogs: Catalogs) -> None:
        """The command menu in every supported language (English as the default)."""
        bot = self.application.bot
        english = [BotCommand(c, d) for c, d in command_menu(catalogs.translator("en"))]
        await bot.set_my_commands(english)
        for code in catalogs.supported:
            if code in MENU_LANGUAGES:
                menu = [BotCommand(c, d) for c, d in command_menu(catalogs.translator(code))]
                await bot.set_my_commands(menu, language_code=MENU_LANGUAGES[code])


class TelegramSender:
    """Sends outbox messages under Telegram's limits: a global rate (25/s by default,
    up to 1,000/s with paid broadcasts) and 1 message per second per chat; a RetryAfter
    pauses the whole sender. Several messages are on their way at once (``in_flight``),
    or the time each waits for its answer would cap the rate."""

    channel = CHANNEL
    idempotent = False
    max_recipients = 1

    def __init__(self, bot: Bot, settings: Settings) -> None:
        self.bot = bot
        self.paid = settings.telegram_paid_broadcast
        self.limiter = RateLimiter(pace(settings), 1.0)
        self.in_flight = in_flight(settings)

    async def send(
        self, recipients: Sequence[str], replies: Sequence[Reply], *, key: str
    ) -> SendResult:
        (recipient,) = recipients
        options = {"allow_paid_broadcast": True} if self.paid else {}
        parts = sendings(replies)
        sent = 0
        try:
            for part in parts:
                await self.limiter.acquire(recipient)
                await send_replies(self.bot, recipient, [part], **options)
                sent += 1
        except TelegramError as error:
            result = result_of_failure(error)
            if result.retry_after is not None:
                self.limiter.pause(result.retry_after)
            return replace(result, unsent=parts[sent:])
        return SendResult(Outcome.SENT)


def result_of_failure(error: TelegramError) -> SendResult:
    """How a refused or failed call to the Bot API counts: for the outbox, and for an
    answer whether to queue it (a retry). Any other error (a bad token, say) is raised
    again."""
    if isinstance(error, RetryAfter):
        seconds = seconds_of(error.retry_after)
        return SendResult(Outcome.RETRY, retry_after=seconds, error="429 retry after")
    if isinstance(error, Forbidden):
        return SendResult(Outcome.GONE, error=error.message[:300])
    if isinstance(error, BadRequest):  # a NetworkError too, but one a retry cannot mend
        gone = any(words in error.message.lower() for words in GONE_ERRORS)
        return SendResult(Outcome.GONE if gone else Outcome.FAILED, error=error.message[:300])
    if isinstance(error, NetworkError):
        return SendResult(Outcome.RETRY, error=f"network: {error.message[:200]}")
    raise error
