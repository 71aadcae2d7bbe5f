"""The ``kigen`` command."""

from __future__ import annotations

import asyncio
import logging
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
    from core.outbox import Delivery

    kigen = await build()
    terminal = TerminalChat(kigen)
    delivery = Delivery(kigen.db, {"console": ConsoleSender(terminal)}, kigen.notices, kigen.clock)
    scheduler = start_scheduler(kigen, delivery)
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
    from bot.serve import KigenServer

    settings = Settings()
    logging.basicConfig(level=settings.log_level)
    asyncio.run(
        KigenServer(settings, host=host, port=port, telegram_polling=telegram_polling).run()
    )


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
