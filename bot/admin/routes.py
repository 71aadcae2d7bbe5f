"""The operator console under ``/admin``: log in, dashboard, broadcasts, knowledge base,
audit log. Server-rendered pages (Jinja2) with a little script of our own for the live
audience count and the progress bar."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from bot.admin import security
from bot.admin.i18n import ConsoleCatalogs
from core import broadcast, knowledge_check, operators
from core.app import Kigen
from core.broadcast import Audience, BroadcastError
from core.i18n import LANGUAGES
from core.messages import clean_text
from core.notices import BROADCAST_FOOTER, broadcast_reply
from core.schedule import DocumentKind
from core.store import audit, stats, users
from core.store import broadcasts as broadcast_queries
from core.store.models import Broadcast, Operator

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
JST = ZoneInfo("Asia/Tokyo")
CHANNELS = ("line", "telegram", "console", "jsonl")
MAX_ID = 2**31


def create_router(kigen: Kigen) -> APIRouter:
    router = APIRouter(prefix="/admin")
    catalogs = ConsoleCatalogs(kigen.settings.locales_dir)
    key = kigen.settings.signing_key

    def page(request: Request, name: str, operator: operators.SignedIn | None, **context: Any):
        language = catalogs.pick(
            request.query_params.get("lang"), request.headers.get("accept-language", "")
        )
        nonce = secrets.token_urlsafe(16)
        token = request.cookies.get(security.SESSION_COOKIE, "")
        response = TEMPLATES.TemplateResponse(
            request,
            name,
            {
                "_": catalogs.gettext(language),
                "lang": language,
                "operator": operator,
                "nonce": nonce,
                "csrf": security.csrf_token(key, token) if operator else "",
                **context,
            },
        )
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def who(request: Request) -> operators.SignedIn | None:
        return await operators.signed_in(
            kigen.db, kigen.clock.now(), request.cookies.get(security.SESSION_COOKIE), key
        )

    async def checked_form(request: Request) -> tuple[operators.SignedIn | None, dict[str, Any]]:
        """The operator of a POST with a valid CSRF token, and its form."""
        operator = await who(request)
        form = dict(await request.form())
        token = request.cookies.get(security.SESSION_COOKIE)
        if operator is None or not security.csrf_valid(key, token, _field(form, "csrf")):
            return None, form
        return operator, form

    def to_login() -> RedirectResponse:
        return RedirectResponse("/admin/login", status_code=303)

    def refused() -> Response:
        return Response(
            "Forbidden: log in again and use the console's own forms.\n",
            status_code=403,
            media_type="text/plain",
        )

    @router.get("/login")
    async def login_page(request: Request, failed: int = 0) -> Response:
        anchor = request.cookies.get(security.LOGIN_COOKIE) or security.new_login_anchor()
        response = page(
            request,
            "login.html",
            None,
            failed=bool(failed),
            login_csrf=security.csrf_token(key, anchor),
        )
        security.set_cookie(request, response, security.LOGIN_COOKIE, anchor, 3600)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        if not security.csrf_valid(
            key, request.cookies.get(security.LOGIN_COOKIE), _field(form, "csrf")
        ):
            return refused()
        token = await operators.log_in(
            kigen.db,
            kigen.clock.now(),
            _field(form, "name")[:64],
            _field(form, "password")[:1024],
            key,
        )
        if token is None:
            return RedirectResponse("/admin/login?failed=1", status_code=303)
        response = RedirectResponse("/admin/", status_code=303)
        security.set_cookie(
            request,
            response,
            security.SESSION_COOKIE,
            token,
            int(operators.SESSION_LIFETIME.total_seconds()),
        )
        response.delete_cookie(security.LOGIN_COOKIE, path="/admin")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        operator, _form = await checked_form(request)
        if operator is None:
            return refused()
        await operators.log_out(kigen.db, kigen.clock.now(), operator.id)
        response = to_login()
        response.delete_cookie(security.SESSION_COOKIE, path="/admin")
        return response

    @router.get("/")
    async def dashboard(request: Request) -> Response:
        operator = await who(request)
        if operator is None:
            return to_login()
        now = kigen.clock.now()
        since = (now - timedelta(days=30)).astimezone(JST).date()
        async with kigen.db.session() as session:
            subscribers = await stats.subscribers(session)
            deliveries = await stats.deliveries(session, now)
            answered = await stats.top_questions(session, "answered", since)
            unanswered = await stats.top_questions(session, "unanswered", since)
            clarified = await stats.top_questions(session, "clarified", since)
        return page(
            request,
            "dashboard.html",
            operator,
            subscribers=subscribers,
            deliveries=deliveries,
            answered=answered,
            unanswered=unanswered,
            clarified=clarified,
            languages=LANGUAGES,
        )

    @router.get("/broadcasts")
    async def broadcast_list(request: Request) -> Response:
        operator = await who(request)
        if operator is None:
            return to_login()
        async with kigen.db.session() as session:
            items = await broadcast_queries.list_recent(session)
            progress = {b.id: await broadcast_queries.progress(session, b.id) for b in items}
        return page(request, "broadcasts.html", operator, items=items, progress=progress)

    @router.get("/broadcasts/new")
    async def broadcast_form(request: Request) -> Response:
        operator = await who(request)
        if operator is None:
            return to_login()
        return page(
            request, "broadcast_new.html", operator, **form_choices(), error=None, values={}
        )

    def form_choices() -> dict[str, Any]:
        supported = kigen.catalogs.supported
        footers = {c: kigen.catalogs.translator(c).gettext(BROADCAST_FOOTER) for c in supported}
        return {
            "languages": [LANGUAGES[c] for c in supported],
            "channels": CHANNELS,
            "kinds": list(DocumentKind),
            "footers": footers,
        }

    def draft_from(form: dict[str, Any]) -> dict[str, Any]:
        texts = {code: _field(form, f"text_{code}") for code in kigen.catalogs.supported}
        days = _field(form, "expiry_within_days").strip()
        audience = Audience(
            channels=tuple(c for c in CHANNELS if form.get(f"channel_{c}")),
            languages=tuple(c for c in kigen.catalogs.supported if form.get(f"lang_{c}")),
            document_kinds=tuple(k.value for k in DocumentKind if form.get(f"kind_{k.value}")),
            expiry_within_days=int(days)
            if days.isascii() and days.isdigit() and len(days) <= 4
            else None,
            saved_after=_iso_date(form.get("saved_after")),
            saved_before=_iso_date(form.get("saved_before")),
        )
        send_at = _local_time(form.get("send_at"))
        return {
            "title": _field(form, "title")[:200],
            "texts": texts,
            "fallback": _field(form, "fallback") or "english",
            "link": _field(form, "link").strip() or None,
            "source": _field(form, "source").strip()[:500] or None,
            "audience": audience,
            "send_at": send_at,
        }

    @router.post("/broadcasts/count")
    async def broadcast_count(request: Request) -> Response:
        operator, form = await checked_form(request)
        if operator is None:
            return refused()
        draft = draft_from(form)
        transient = Broadcast(
            title="",
            texts={k: v for k, v in draft["texts"].items() if v.strip()},
            fallback=draft["fallback"],
            audience=draft["audience"].to_dict(),
            created_by=operator.name,
            created_at=kigen.clock.now(),
        )
        async with kigen.db.session() as session:
            counted = await broadcast.count(session, transient, kigen.clock.now())
        return JSONResponse({"matching": counted.matching, "reached": counted.reached})

    @router.post("/broadcasts")
    async def broadcast_create(request: Request) -> Response:
        operator, form = await checked_form(request)
        if operator is None:
            return refused()
        draft = draft_from(form)
        try:
            broadcast_id = await broadcast.create(
                kigen.db, kigen.clock.now(), operator.name, **draft
            )
        except BroadcastError as error:
            return page(
                request,
                "broadcast_new.html",
                operator,
                **form_choices(),
                error=str(error),
                values=form,
            )
        return RedirectResponse(f"/admin/broadcasts/{broadcast_id}", status_code=303)

    @router.get("/broadcasts/{broadcast_id}")
    async def broadcast_detail(
        request: Request, broadcast_id: int, error: str | None = None
    ) -> Response:
        operator = await who(request)
        if operator is None:
            return to_login()
        if not 0 < broadcast_id < MAX_ID:
            return Response("No such broadcast.\n", status_code=404, media_type="text/plain")
        async with kigen.db.session() as session:
            item = await session.get(Broadcast, broadcast_id)
            if item is None:
                return Response("No such broadcast.\n", status_code=404, media_type="text/plain")
            counted = await broadcast.count(session, item, kigen.clock.now())
            progress = await broadcast_queries.progress(session, broadcast_id)
        previews = {
            LANGUAGES[code]: broadcast_reply(item, kigen.catalogs.translator(code)).text
            for code in item.texts
        }
        return page(
            request,
            "broadcast.html",
            operator,
            item=item,
            counted=counted,
            progress=progress,
            previews=previews,
            error=error,
            two_person=kigen.settings.broadcast_two_person,
        )

    @router.get("/broadcasts/{broadcast_id}/progress")
    async def broadcast_progress(request: Request, broadcast_id: int) -> Response:
        if await who(request) is None:
            return refused()
        if not 0 < broadcast_id < MAX_ID:
            return JSONResponse({"error": "no such broadcast"}, status_code=404)
        async with kigen.db.session() as session:
            item = await session.get(Broadcast, broadcast_id)
            if item is None:
                return JSONResponse({"error": "no such broadcast"}, status_code=404)
            progress = await broadcast_queries.progress(session, broadcast_id)
        return JSONResponse({"status": item.status, **progress})

    @router.post("/broadcasts/{broadcast_id}/{action}")
    async def broadcast_action(request: Request, broadcast_id: int, action: str) -> Response:
        operator, _form = await checked_form(request)
        if operator is None:
            return refused()
        if not 0 < broadcast_id < MAX_ID:
            return Response(status_code=404)
        now = kigen.clock.now()
        try:
            if action == "approve":
                await broadcast.approve(
                    kigen.db,
                    now,
                    broadcast_id,
                    operator.name,
                    operator.role,
                    two_person=kigen.settings.broadcast_two_person,
                )
            elif action == "send":
                await broadcast.start(kigen.db, now, broadcast_id, operator.name)
            elif action == "cancel":
                await broadcast.cancel(kigen.db, now, broadcast_id, operator.name)
            elif action == "test":
                await test_send(operator, broadcast_id)
            else:
                return Response(status_code=404)
        except BroadcastError as error:
            return RedirectResponse(
                f"/admin/broadcasts/{broadcast_id}?error={_quote(str(error))}", status_code=303
            )
        return RedirectResponse(f"/admin/broadcasts/{broadcast_id}", status_code=303)

    async def test_send(operator: operators.SignedIn, broadcast_id: int) -> None:
        async with kigen.db.session() as session:
            account = await session.get(Operator, operator.id)
            chat = None
            if account and account.chat_channel and account.chat_user_id:
                chat = await users.get_user(session, account.chat_channel, account.chat_user_id)
        if chat is None:
            raise BroadcastError(
                "set your own chat first (kigen operator set-chat) and write to the bot once"
            )
        await broadcast.test_send(
            kigen.db, kigen.clock.now(), broadcast_id, (chat.channel, chat.id), operator.name
        )

    @router.get("/kb")
    async def knowledge_base(request: Request) -> Response:
        operator = await who(request)
        if operator is None:
            return to_login()
        report = knowledge_check.check(
            kigen.settings.locales_dir,
            kigen.catalogs.supported,
            today=kigen.clock.now().astimezone(JST).date(),
        )
        return page(
            request,
            "kb.html",
            operator,
            entries=list(kigen.kb.meta.values()),
            kb=kigen.kb,
            report=report,
            languages=kigen.catalogs.supported,
        )

    @router.get("/audit")
    async def audit_log(request: Request) -> Response:
        operator = await who(request)
        if operator is None:
            return to_login()
        async with kigen.db.session() as session:
            entries = await audit.recent(session)
        return page(request, "audit.html", operator, entries=entries)

    return router


def _field(form: dict[str, Any], name: str) -> str:
    """A form field as clean text ("" when missing or not text)."""
    value = form.get(name, "")
    return clean_text(value) if isinstance(value, str) else ""


def _iso_date(value: Any) -> str | None:
    try:
        day = date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return day.isoformat() if day and 2000 <= day.year <= 2100 else None


def _local_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return moment.replace(tzinfo=JST) if moment and 2000 <= moment.year <= 2100 else None


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:200])
