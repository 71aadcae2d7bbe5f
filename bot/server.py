"""The HTTP face of Kigen (FastAPI): platform webhooks and health checks."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text

from bot.admin.routes import create_router
from core import links
from core.app import Kigen
from core.calendar import expiry_calendar
from core.leader import Leadership
from core.metrics import WEBHOOK_SECONDS
from core.store import stats
from core.store.db import head_revision
from core.store.models import Expiry, User

log = logging.getLogger(__name__)

OUTBOX_ROWS = Gauge("kigen_outbox_rows", "Outbox rows by kind and state", ["kind", "status"])
BROADCAST_PROGRESS = Gauge(
    "kigen_broadcast_residents",
    "Residents of broadcasts being sent, by state",
    ["broadcast", "state"],
)
#: Bigger webhook bodies are refused before they are read into memory entirely.
MAX_BODY_BYTES = 1024 * 1024


class TelegramEndpoint(Protocol):
    async def process(self, payload: dict[str, Any]) -> None: ...


class LineEndpoint(Protocol):
    def verify(self, body: bytes, signature: str | None) -> None: ...

    async def process(self, body: bytes) -> None: ...


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing (by raising :class:`BodyTooLarge`) beyond ``limit``."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def create_app(
    kigen: Kigen,
    *,
    telegram: TelegramEndpoint | None = None,
    telegram_secret: str | None = None,
    line: LineEndpoint | None = None,
    leadership: Leadership | None = None,
) -> FastAPI:
    """The FastAPI application; webhooks exist only for the configured channels."""
    app = FastAPI(title="Kigen", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_router(kigen))

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "leader": leadership.holding if leadership else False}

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        async with kigen.db.session() as session:
            outbox_counts = await stats.outbox_by_state(session)
            broadcasts = await stats.broadcasts_in_progress(session)
        for (kind, status), count in outbox_counts.items():
            OUTBOX_ROWS.labels(kind, status).set(count)
        for broadcast_id, counts in broadcasts.items():
            for state, count in counts.items():
                BROADCAST_PROGRESS.labels(str(broadcast_id), state).set(count)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            async with kigen.db.session() as session:
                version = await session.scalar(text("SELECT version_num FROM alembic_version"))
        except Exception:
            log.exception("database not reachable")
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        if version != head_revision():
            return JSONResponse({"status": "migrations pending"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/calendar/{token}.ics")
    async def calendar(token: str) -> Response:
        now = kigen.clock.now()
        subject = links.verify(kigen.settings.signing_key, token, now=now) or ""
        expiry_id, _, saved = subject.removeprefix("e").partition("x")
        if (
            not subject.startswith("e")
            or not subject.isascii()
            or not (expiry_id + saved).isdigit()
        ):
            return Response(
                "This link is invalid or has expired.\n", status_code=404, media_type="text/plain"
            )
        async with kigen.db.session() as session:
            expiry = await session.get(Expiry, int(expiry_id))
            user = await session.get(User, expiry.user_id) if expiry else None
        if expiry is None or user is None or int(expiry.created_at.timestamp()) != int(saved):
            return Response(
                "This date has been deleted.\n", status_code=410, media_type="text/plain"
            )
        t = kigen.catalogs.translator(user.language or "en")
        headers = {"Content-Disposition": f'attachment; filename="kigen-{expiry.kind}.ics"'}
        return Response(
            expiry_calendar(expiry, t, now=now), media_type="text/calendar", headers=headers
        )

    if telegram is not None:

        @app.post("/telegram/webhook")
        async def telegram_webhook(request: Request) -> Response:
            with WEBHOOK_SECONDS.labels("telegram").time():
                return await _telegram(request)

        async def _telegram(request: Request) -> Response:
            given = request.headers.get("x-telegram-bot-api-secret-token", "")
            if not telegram_secret or not hmac.compare_digest(
                given.encode(), telegram_secret.encode()
            ):
                return Response(status_code=403)
            try:
                payload = json.loads(await read_body(request))
            except BodyTooLarge:
                return Response(status_code=413)
            except (ValueError, RecursionError):
                return JSONResponse({"error": "body is not JSON"}, status_code=400)
            if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
                return JSONResponse({"error": "not a Telegram update"}, status_code=400)
            try:
                await telegram.process(payload)
            except ValueError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            return Response(status_code=200)

    if line is not None:
        from bot.line import WebhookRejected

        @app.post("/line/webhook")
        async def line_webhook(request: Request) -> Response:
            with WEBHOOK_SECONDS.labels("line").time():
                return await _line(request)

        async def _line(request: Request) -> Response:
            try:
                body = await read_body(request)
                line.verify(body, request.headers.get("x-line-signature"))
                await line.process(body)
            except BodyTooLarge:
                return Response(status_code=413)
            except WebhookRejected as rejected:
                return JSONResponse({"error": str(rejected)}, status_code=rejected.status)
            return Response(status_code=200)

    return app
