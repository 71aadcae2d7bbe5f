"""The operator console over HTTP: sessions, CSRF, lock-out, and the broadcast actions."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pytest_asyncio

from bot.serve import KigenServer
from core import operators
from core.clock import FixedClock
from core.config import Settings
from core.store.models import AuditEntry
from tests.conftest import JST

PASSWORD = "correct horse battery"


@pytest_asyncio.fixture
async def console(database_url):
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        secret_key="k" * 40,
        broadcast_two_person=True,
        delivery_interval_seconds=3600,
    )
    server = KigenServer(settings, port=0, clock=FixedClock(datetime(2026, 11, 25, 10, tzinfo=JST)))
    await server.start()
    for name, role in (("ed", "editor"), ("boss", "approver")):
        await operators.add(server.kigen.db, server.kigen.clock.now(), name, role, PASSWORD)
    yield server
    await server.stop()


async def logged_in(console, name: str, password: str = PASSWORD) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=console.url, follow_redirects=False)
    page = await client.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = await client.post(
        "/admin/login", data={"name": name, "password": password, "csrf": csrf}
    )
    assert response.status_code == 303
    return client


def form_csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def test_pages_need_a_login(console):
    async with httpx.AsyncClient(base_url=console.url) as client:
        for path in (
            "/admin/",
            "/admin/broadcasts",
            "/admin/broadcasts/new",
            "/admin/kb",
            "/admin/audit",
        ):
            response = await client.get(path, follow_redirects=False)
            assert (response.status_code, response.headers["location"]) == (303, "/admin/login")
        assert (await client.post("/admin/broadcasts", data={"title": "x"})).status_code == 403
        assert (await client.get("/admin/broadcasts/1/progress")).status_code == 403


async def test_login_sets_a_safe_cookie_and_pages_carry_security_headers(console):
    client = await logged_in(console, "ed")
    cookie = next(h for h in client.cookies.jar if h.name == "kigen_session")
    assert cookie.path == "/admin"
    dashboard = await client.get("/admin/")
    assert dashboard.status_code == 200 and "Dashboard" in dashboard.text
    assert "frame-ancestors 'none'" in dashboard.headers["content-security-policy"]
    assert dashboard.headers["x-frame-options"] == "DENY"
    login = await httpx.AsyncClient(base_url=console.url).get("/admin/login")
    assert "httponly" in login.headers["set-cookie"].lower()
    assert "samesite=strict" in login.headers["set-cookie"].lower()
    await client.aclose()


async def test_a_form_without_the_csrf_token_is_refused(console):
    client = await logged_in(console, "ed")
    response = await client.post("/admin/broadcasts", data={"title": "Fees", "text_en": "Hello"})
    assert response.status_code == 403
    response = await client.post(
        "/admin/broadcasts", data={"title": "Fees", "text_en": "Hello", "csrf": "forged"}
    )
    assert response.status_code == 403
    await client.aclose()


async def test_repeated_failures_lock_the_account(console):
    async with httpx.AsyncClient(base_url=console.url) as client:
        for _ in range(operators.MAX_FAILURES):
            page = await client.get("/admin/login")
            await client.post(
                "/admin/login",
                data={"name": "ed", "password": "wrong", "csrf": form_csrf(page.text)},
            )
        page = await client.get("/admin/login")
        response = await client.post(
            "/admin/login", data={"name": "ed", "password": PASSWORD, "csrf": form_csrf(page.text)}
        )
        assert response.headers["location"] == "/admin/login?failed=1"
    async with console.kigen.db.session() as session:
        from sqlalchemy import select

        actions = [e.action for e in (await session.execute(select(AuditEntry))).scalars()]
    assert "login.lockout" in actions and "login.locked" in actions


async def test_logging_out_revokes_the_session_cookie(console):
    client = await logged_in(console, "ed")
    token = client.cookies.get("kigen_session")
    page = await client.get("/admin/")
    await client.post("/admin/logout", data={"csrf": form_csrf(page.text)})
    replay = httpx.AsyncClient(base_url=console.url, cookies={"kigen_session": token})
    assert (await replay.get("/admin/", follow_redirects=False)).status_code == 303
    await replay.aclose()
    await client.aclose()


async def test_a_broadcast_from_draft_to_approval_by_a_second_operator(console):
    editor = await logged_in(console, "ed")
    csrf = form_csrf((await editor.get("/admin/broadcasts/new")).text)
    counted = await editor.post("/admin/broadcasts/count", data={"csrf": csrf, "text_en": "x"})
    assert counted.json() == {"matching": 0, "reached": 0}
    created = await editor.post(
        "/admin/broadcasts",
        data={
            "csrf": csrf,
            "title": "Fees",
            "text_en": "Fees change.",
            "text_ja": "手数料が変わります。",
            "fallback": "english",
            "link": "https://www.moj.go.jp/isa/",
        },
    )
    location = created.headers["location"]
    detail = await editor.get(location)
    assert "手数料が変わります。" in detail.text and "/updates" in detail.text
    refused = await editor.post(f"{location}/approve", data={"csrf": form_csrf(detail.text)})
    assert "error=" in refused.headers["location"]
    boss = await logged_in(console, "boss")
    detail = await boss.get(location)
    await boss.post(f"{location}/approve", data={"csrf": form_csrf(detail.text)})
    await boss.post(f"{location}/send", data={"csrf": form_csrf(detail.text)})
    progress = (await boss.get(f"{location}/progress")).json()
    assert progress["status"] == "sending"
    audit = await boss.get("/admin/audit")
    assert "broadcast.approve" in audit.text and "broadcast.create" in audit.text
    await editor.aclose()
    await boss.aclose()


async def test_there_is_no_open_redirect_and_no_stack_trace(console):
    client = await logged_in(console, "ed")
    response = await client.get("/admin/broadcasts/999999")
    assert response.status_code == 404 and "Traceback" not in response.text
    page = await httpx.AsyncClient(base_url=console.url).get(
        "/admin/login?next=https://evil.example"
    )
    assert "evil.example" not in page.text
    await client.aclose()


async def test_the_console_speaks_japanese(console):
    client = await logged_in(console, "ed")
    page = await client.get("/admin/?lang=ja")
    assert "ダッシュボード" in page.text
    await client.aclose()
