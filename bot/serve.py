"""``kigen serve``: the HTTP server, the configured platform channels and the scheduler
in one process."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import AsyncExitStack
from datetime import timedelta

import uvicorn

from bot.scheduler import start_scheduler
from bot.server import create_app
from core.app import Kigen, build
from core.clock import Clock
from core.config import Settings
from core.leader import Leadership
from core.outbox import Delivery, Sender

log = logging.getLogger(__name__)


class RefusedToStart(RuntimeError):
    """The settings are not fit for production."""


class KigenServer:
    """Everything ``kigen serve`` runs; :meth:`start` and :meth:`stop` for tests,
    :meth:`run` for the command line."""

    def __init__(
        self,
        settings: Settings,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        telegram_polling: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.host, self.port = host, port
        self.telegram_polling = telegram_polling
        self.clock = clock
        self.kigen: Kigen | None = None
        self._stack = AsyncExitStack()
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task | None = None

    async def start(self) -> None:
        if self.settings.environment == "production":
            problems = self.settings.production_problems(telegram_polling=self.telegram_polling)
            if problems:
                raise RefusedToStart("; ".join(problems))
        stack = self._stack
        kigen = self.kigen = await build(self.settings, self.clock)
        stack.push_async_callback(kigen.close)
        senders: dict[str, Sender] = {}
        telegram = None
        if self.settings.telegram_token is not None:
            from bot.telegram import (
                ALLOWED_UPDATES,
                CHANNEL,
                TelegramBridge,
                TelegramSender,
                build_application,
            )

            application = build_application(self.settings, polling=self.telegram_polling)
            telegram = TelegramBridge(application, kigen.conversation)
            senders[CHANNEL] = TelegramSender(application.bot, self.settings)
            await stack.enter_async_context(application)
            await telegram.publish_commands(kigen.catalogs)
            if self.telegram_polling:
                await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
                stack.push_async_callback(application.updater.stop)
                await application.start()
                stack.push_async_callback(application.stop)
        line = None
        if self.settings.line_channel_secret and self.settings.line_channel_access_token:
            from bot.line import CHANNEL as LINE
            from bot.line import LineBridge, LineSender, Renderer, open_api
            from bot.line_richmenu import rich_menu_ids

            api = await open_api(self.settings, stack)
            renderer = Renderer(kigen.catalogs, kigen.clock)
            line = LineBridge(
                api,
                kigen.conversation,
                renderer,
                self.settings.line_channel_secret.get_secret_value(),
                rich_menus=await rich_menu_ids(api),
            )
            senders[LINE] = LineSender(api, renderer, self.settings)
        self.leadership = Leadership(kigen.db)
        stack.push_async_callback(self.leadership.release)
        secret = self.settings.telegram_webhook_secret
        app = create_app(
            kigen,
            telegram=telegram,
            telegram_secret=secret.get_secret_value() if secret else None,
            line=line,
            leadership=self.leadership,
        )
        self.delivery = Delivery(
            kigen.db,
            senders,
            kigen.notices,
            kigen.clock,
            lease=timedelta(seconds=self.settings.claim_lease_seconds),
            # Telegram's pace is slow: claim about 2 seconds of it at a time.
            batch_sizes={"telegram": max(1, round(2 * self.settings.telegram_rate))},
            leadership=self.leadership,
            leader_only=frozenset({"telegram"}),
        )
        scheduler = start_scheduler(kigen, self.delivery, self.leadership)
        stack.callback(scheduler.shutdown, wait=False)
        stack.push_async_callback(self.delivery.stop)  # runs first: lets a delivery finish
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._serving.done():
                await self._serving
                raise RuntimeError("the HTTP server did not start")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            await self._serving
        await self._stack.aclose()

    async def run(self) -> None:
        await self.start()
        # What start-up built (the knowledge base, the catalogs, the SQL metadata) lives as
        # long as the process: out of the collector's reach, a full collection no longer
        # walks it. It took 180 ms each time, holding up webhooks and the senders' pace.
        gc.collect()
        gc.freeze()
        try:
            await self._serving
        finally:
            await self.stop()
