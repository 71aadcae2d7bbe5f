"""The ``kigen`` command."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

import click

from core.config import Settings


@click.group()
def main() -> None:
    """Kigen: answers and expiry reminders for foreign residents of Japan."""


@main.command()
def chat() -> None:
    """Chat with Kigen in this terminal (SQLite, nothing to configure)."""
    asyncio.run(_chat())


async def _chat() -> None:
    from bot.console import ConsoleSender, TerminalChat
    from bot.scheduler import start_scheduler
    from core.app import build
    from core.leader import Leadership
    from core.outbox import Delivery

    kigen = await build()
    terminal = TerminalChat(kigen)
    delivery = Delivery(kigen.db, {"console": ConsoleSender(terminal)}, kigen.notices, kigen.clock)
    scheduler = start_scheduler(kigen, delivery, Leadership(kigen.db))
    try:
        await terminal.run()
    finally:
        await delivery.stop()
        scheduler.shutdown(wait=False)
        await kigen.close()


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use an ISO date-time such as 2027-01-01T09:00:00+09:00") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone offset, such as +09:00")
    return moment


@main.command()
@click.option("--jsonl", is_flag=True, required=True, help="Read and write JSON lines.")
@click.option("--now", callback=_parse_now, help="Fix the clock, e.g. 2027-01-01T09:00:00+09:00.")
def ask(jsonl: bool, now: datetime | None) -> None:
    """Answer JSON lines from stdin on stdout (for scripts, editors and tests)."""
    asyncio.run(_ask(now))


async def _ask(now: datetime | None) -> None:
    from bot import jsonl
    from core.app import build
    from core.clock import FixedClock, SystemClock

    kigen = await build(clock=FixedClock(now) if now else SystemClock())
    try:
        await jsonl.serve(kigen.conversation, sys.stdin, sys.stdout)
    finally:
        await kigen.close()


@main.group()
def db() -> None:
    """The database."""


@db.command()
def upgrade() -> None:
    """Run the migrations (every start does this too)."""
    from core.store.db import upgrade as run_upgrade

    url = Settings().resolved_database_url
    run_upgrade(url)
    click.echo("database is up to date")


@main.group()
def faq() -> None:
    """The knowledge base."""


@faq.command("check")
@click.option("--lang", "languages", multiple=True, help="Check only these languages (and en).")
def faq_check(languages: tuple[str, ...]) -> None:
    """Validate the FAQ content; exits 1 on an error."""
    from core.i18n import LANGUAGES, SUPPORTED
    from core.knowledge_check import check

    wanted = tuple(dict.fromkeys(("en", *languages))) if languages else SUPPORTED
    unknown = [lang for lang in wanted if lang not in LANGUAGES]
    if unknown:
        raise click.BadParameter(f"unknown language(s): {', '.join(unknown)}")
    report = check(Settings().locales_dir, wanted, today=datetime.now().date())
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    for error in report.errors:
        click.echo(f"error: {error}")
    click.echo(
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) in {', '.join(wanted)}"
    )
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--telegram-polling", is_flag=True, help="Fetch Telegram updates by long polling.")
def serve(host: str, port: int, telegram_polling: bool) -> None:
    """Run the webhooks, the configured channels and the scheduler."""
    from bot.logs import configure
    from bot.serve import KigenServer, RefusedToStart

    settings = Settings()
    configure(settings.log_level)
    server = KigenServer(settings, host=host, port=port, telegram_polling=telegram_polling)
    try:
        asyncio.run(server.run())
    except RefusedToStart as error:
        raise click.ClickException(f"refusing to start in production: {error}") from None


@main.group()
def telegram() -> None:
    """The Telegram bot."""


@telegram.command("set-webhook")
@click.argument("url")
def telegram_set_webhook(url: str) -> None:
    """Register URL (ending in /telegram/webhook) as the bot's webhook."""
    settings = Settings()
    if settings.telegram_webhook_secret is None:
        raise click.UsageError("set KIGEN_TELEGRAM_WEBHOOK_SECRET first")
    asyncio.run(_set_webhook(settings, url))
    click.echo(f"webhook set to {url}")


async def _set_webhook(settings: Settings, url: str) -> None:
    from bot.telegram import ALLOWED_UPDATES, build_application

    application = build_application(settings)
    async with application:
        await application.bot.set_webhook(
            url,
            secret_token=settings.telegram_webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )


@main.group()
def line() -> None:
    """The LINE official account."""


@line.command("setup-richmenu")
def line_setup_richmenu() -> None:
    """Create the rich menus, one per supported language (replacing Kigen's old ones)."""
    settings = Settings()
    if not (settings.line_channel_secret and settings.line_channel_access_token):
        raise click.UsageError("set KIGEN_LINE_CHANNEL_SECRET and KIGEN_LINE_CHANNEL_ACCESS_TOKEN")
    created = asyncio.run(_setup_richmenu(settings))
    for code, menu_id in created.items():
        click.echo(f"{code}: {menu_id}")


async def _setup_richmenu(settings: Settings) -> dict[str, str]:
    from contextlib import AsyncExitStack

    from linebot.v3.messaging import AsyncMessagingApiBlob

    from bot.line import open_api
    from bot.line_richmenu import setup_rich_menus
    from core.i18n import SUPPORTED, Catalogs

    async with AsyncExitStack() as stack:
        api = await open_api(settings, stack)
        blob = AsyncMessagingApiBlob(api.api_client)
        return await setup_rich_menus(api, blob, Catalogs(settings.locales_dir, SUPPORTED))


@main.group()
def operator() -> None:
    """Console operators."""


@operator.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["editor", "approver", "admin"]), required=True)
@click.password_option(help="Prompted for when not given.")
def operator_add(name: str, role: str, password: str) -> None:
    """Create an operator account (password prompted, stored as an argon2 hash)."""
    from core.operators import OperatorError, add

    async def run() -> None:
        async with _core() as kigen:
            await add(kigen.db, kigen.clock.now(), name, role, password)

    try:
        asyncio.run(run())
    except OperatorError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"operator {name} ({role}) added")


@operator.command("set-chat")
@click.argument("name")
@click.argument("channel", type=click.Choice(["telegram", "line", "console", "jsonl"]))
@click.argument("user_id")
def operator_set_chat(name: str, channel: str, user_id: str) -> None:
    """Set the operator's own chat (CHANNEL and platform USER_ID), for test sends."""
    from core.operators import OperatorError, set_chat

    async def run() -> None:
        async with _core() as kigen:
            await set_chat(kigen.db, name, channel, user_id)

    try:
        asyncio.run(run())
    except OperatorError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"test sends of {name} go to {channel}:{user_id}")


class _core:
    """``async with _core() as kigen``: the core parts for one command."""

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        from core.app import build

        self.kigen = await build()
        return self.kigen

    async def __aexit__(self, *exc: object) -> None:
        await self.kigen.close()


BROADCAST_ID = click.IntRange(1, 2**31 - 1)


@main.group("broadcast")
def broadcast_group() -> None:
    """Policy updates to residents (the same actions as the console)."""


@broadcast_group.command("create")
@click.option("--as", "operator_name", required=True, help="The operator doing this.")
@click.option("--title", required=True)
@click.option(
    "--text",
    "texts",
    multiple=True,
    required=True,
    metavar="LANG=TEXT",
    help="A text per language code, e.g. --text en='Fees change…' --text vi='…'.",
)
@click.option(
    "--fallback", type=click.Choice(["english", "skip"]), default="english", show_default=True
)
@click.option("--link")
@click.option("--source")
@click.option("--channel", "channels", multiple=True)
@click.option("--language", "languages", multiple=True)
@click.option("--document", "documents", multiple=True)
@click.option("--expiry-within-days", type=click.IntRange(0, 3650))
def broadcast_create(
    operator_name: str,
    title: str,
    texts: tuple[str, ...],
    fallback: str,
    link: str | None,
    source: str | None,
    channels: tuple[str, ...],
    languages: tuple[str, ...],
    documents: tuple[str, ...],
    expiry_within_days: int | None,
) -> None:
    """Save a draft; prints its id and how many residents it reaches."""
    from core import broadcast
    from core.broadcast import Audience

    by_language = {}
    for item in texts:
        code, separator, text = item.partition("=")
        if not separator:
            raise click.BadParameter(f"{item!r}: use LANG=TEXT")
        by_language[code.strip()] = text
    audience = Audience(
        channels=channels,
        languages=languages,
        document_kinds=documents,
        expiry_within_days=expiry_within_days,
    )

    async def run() -> None:
        async with _core() as kigen:
            broadcast_id = await broadcast.create(
                kigen.db,
                kigen.clock.now(),
                operator_name,
                title=title,
                texts=by_language,
                fallback=fallback,
                link=link,
                source=source,
                audience=audience,
            )
            click.echo(f"broadcast {broadcast_id} saved as a draft")
            await _show(kigen, broadcast_id)

    _run_broadcast(run)


@broadcast_group.command("preview")
@click.argument("broadcast_id", type=BROADCAST_ID)
def broadcast_preview(broadcast_id: int) -> None:
    """Show each language's message as residents will read it, and the audience."""

    async def run() -> None:
        async with _core() as kigen:
            await _show(kigen, broadcast_id, previews=True)

    _run_broadcast(run)


@broadcast_group.command("approve")
@click.argument("broadcast_id", type=BROADCAST_ID)
@click.option("--as", "operator_name", required=True)
def broadcast_approve(broadcast_id: int, operator_name: str) -> None:
    """Approve a draft (by a second operator when KIGEN_BROADCAST_TWO_PERSON=1)."""
    from sqlalchemy import select

    from core import broadcast
    from core.store.models import Operator

    async def run() -> None:
        async with _core() as kigen:
            async with kigen.db.session() as session:
                account = (
                    await session.execute(select(Operator).where(Operator.name == operator_name))
                ).scalar_one_or_none()
            if account is None:
                raise click.ClickException(f"no operator {operator_name}")
            await broadcast.approve(
                kigen.db,
                kigen.clock.now(),
                broadcast_id,
                operator_name,
                account.role,
                two_person=kigen.settings.broadcast_two_person,
            )
            click.echo(f"broadcast {broadcast_id} approved")

    _run_broadcast(run)


@broadcast_group.command("send")
@click.argument("broadcast_id", type=BROADCAST_ID)
@click.option("--as", "operator_name", required=True)
def broadcast_send(broadcast_id: int, operator_name: str) -> None:
    """Start sending an approved broadcast (the running server's jobs deliver it)."""
    from core import broadcast

    async def run() -> None:
        async with _core() as kigen:
            await broadcast.start(kigen.db, kigen.clock.now(), broadcast_id, operator_name)
            click.echo(f"broadcast {broadcast_id} is being sent")

    _run_broadcast(run)


@broadcast_group.command("cancel")
@click.argument("broadcast_id", type=BROADCAST_ID)
@click.option("--as", "operator_name", required=True)
def broadcast_cancel(broadcast_id: int, operator_name: str) -> None:
    """Stop what is not yet sent."""
    from core import broadcast

    async def run() -> None:
        async with _core() as kigen:
            await broadcast.cancel(kigen.db, kigen.clock.now(), broadcast_id, operator_name)
            click.echo(f"broadcast {broadcast_id} cancelled")

    _run_broadcast(run)


@broadcast_group.command("status")
@click.argument("broadcast_id", type=BROADCAST_ID)
@click.option("--follow", is_flag=True, help="Show a progress bar until it is done.")
def broadcast_status(broadcast_id: int, follow: bool) -> None:
    """Progress of a broadcast: queued, sent, failed, blocked."""
    from rich.progress import Progress

    from core.store import broadcasts as queries
    from core.store.models import Broadcast

    async def run() -> None:
        async with _core() as kigen:
            with Progress(transient=False) as bar:
                task = bar.add_task(f"broadcast {broadcast_id}", total=None)
                while True:
                    async with kigen.db.session() as session:
                        item = await session.get(Broadcast, broadcast_id)
                        if item is None:
                            raise click.ClickException(f"no broadcast {broadcast_id}")
                        counts = await queries.progress(session, broadcast_id)
                    total = sum(counts[k] for k in ("sent", "queued", "failed", "blocked"))
                    bar.update(
                        task,
                        total=max(total, 1),
                        completed=counts["sent"],
                        description=f"broadcast {broadcast_id} ({item.status})",
                    )
                    if not follow or item.status in ("done", "cancelled"):
                        break
                    await asyncio.sleep(1)
            click.echo(
                " ".join(f"{key}={value}" for key, value in counts.items())
                + f" status={item.status}"
            )

    _run_broadcast(run)


async def _show(kigen, broadcast_id: int, *, previews: bool = False) -> None:  # type: ignore[no-untyped-def]
    from core import broadcast
    from core.notices import broadcast_reply
    from core.store.models import Broadcast

    async with kigen.db.session() as session:
        item = await session.get(Broadcast, broadcast_id)
        if item is None:
            raise click.ClickException(f"no broadcast {broadcast_id}")
        counted = await broadcast.count(session, item, kigen.clock.now())
    click.echo(
        f"{item.title} [{item.status}]: reaches {counted.reached} of {counted.matching} residents"
    )
    if previews:
        for code in item.texts:
            click.echo(f"--- {code}\n{broadcast_reply(item, kigen.catalogs.translator(code)).text}")


def _run_broadcast(run) -> None:  # type: ignore[no-untyped-def]
    from core.broadcast import BroadcastError

    try:
        asyncio.run(run())
    except BroadcastError as error:
        raise click.ClickException(str(error)) from None
