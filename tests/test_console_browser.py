"""The operator console in a real headless Chromium (Debian's package) driven by
Playwright: log in, compose in two languages, watch the live count, approve as a second
operator, send to the fake Telegram and LINE servers, watch the progress reach 100 % and
read the report. Screenshots of each page are kept in tests/artifacts/."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import pytest_asyncio

from bot.serve import KigenServer
from core import operators
from core.config import Settings
from core.store import users
from tests.fakes.line import FakeLine
from tests.fakes.line import spec_available as line_spec
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram import spec_available as telegram_spec

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "correct horse battery"

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (make test installs it as root)",
    ),
    pytest.mark.skipif(not (line_spec() and telegram_spec()), reason="../shared/specs not found"),
]


@pytest_asyncio.fixture
async def stack(database_url):
    with FakeTelegram() as telegram, FakeLine() as line:
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            secret_key="s" * 40,
            broadcast_two_person=True,
            delivery_interval_seconds=0.3,
            telegram_token=telegram.token,
            telegram_api_url=telegram.base_url,
            telegram_webhook_secret="secret-token",
            telegram_rate=200,
            line_channel_secret="line-secret",
            line_channel_access_token=line.access_token,
            line_api_url=line.base_url,
        )
        server = KigenServer(settings, port=0)
        await server.start()
        kigen = server.kigen
        now = kigen.clock.now()
        async with kigen.db.session() as session:
            for number in range(30):
                channel, platform_id = (
                    ("telegram", str(1000 + number)) if number % 2 else ("line", f"U{number:032d}")
                )
                user, _ = await users.get_or_create_user(session, channel, platform_id, now)
                user.language, user.updates_opt_in = ("ja" if number % 3 == 0 else "en"), True
        for name, role in (("ed", "editor"), ("boss", "approver")):
            await operators.add(kigen.db, now, name, role, PASSWORD)
        yield server, telegram, line
        await server.stop()


async def test_an_operator_sends_a_broadcast_in_two_languages(stack):
    from playwright.async_api import async_playwright, expect

    server, telegram, line = stack
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        page = await browser.new_page(viewport={"width": 420, "height": 900})  # a phone

        async def press(label: str) -> None:
            async with page.expect_navigation():
                await page.get_by_role("button", name=label, exact=True).click()

        async def log_in(name: str) -> None:
            await page.goto(f"{server.url}/admin/login")
            await page.fill("#name", name)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server.url}/admin/")

        await page.goto(f"{server.url}/admin/login")
        await page.screenshot(path=ARTIFACTS / "login.png", full_page=True)
        await log_in("ed")
        await page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

        await page.goto(f"{server.url}/admin/broadcasts/new")
        await page.fill("#title", "Fee change")
        await page.fill("#text_en", "Immigration fees change on 1 April.")
        await page.fill("#text_ja", "4月1日から入管の手数料が変わります。")
        await expect(page.locator("#count")).to_have_text("30 / 30")
        await page.check("input[name=channel_line]")
        await expect(page.locator("#count")).to_have_text("15 / 15")
        await page.uncheck("input[name=channel_line]")
        await expect(page.locator("#count")).to_have_text("30 / 30")
        assert "/updates" in await page.inner_text("#preview_ja")
        await page.screenshot(path=ARTIFACTS / "compose.png", full_page=True)
        await page.click("text=Save draft")
        await page.wait_for_url(f"{server.url}/admin/broadcasts/*")
        detail_url = page.url
        await press("Approve")
        assert "approver" in await page.inner_text(".error")
        await press("Log out")

        await log_in("boss")
        await page.goto(detail_url)
        await press("Approve")
        await press("Send")
        await expect(page.locator("#status")).to_have_text("done", timeout=30_000)
        await page.screenshot(path=ARTIFACTS / "broadcast-done.png", full_page=True)
        assert await page.inner_text("#sent") == "30"
        assert await page.get_attribute("#progress", "value") == "30"
        await page.goto(f"{server.url}/admin/broadcasts")
        await page.screenshot(path=ARTIFACTS / "broadcasts.png", full_page=True)
        for path in ("kb", "audit"):
            await page.goto(f"{server.url}/admin/{path}")
            await page.screenshot(path=ARTIFACTS / f"{path}.png", full_page=True)
        await page.goto(f"{server.url}/admin/?lang=ja")
        assert "ダッシュボード" in await page.inner_text("header")
        await page.screenshot(path=ARTIFACTS / "dashboard-ja.png", full_page=True)
        await browser.close()

    for number in range(1, 30, 2):
        texts = telegram.sent_texts(1000 + number)
        assert len(texts) == 1
        assert texts[0].startswith("4月1日" if number % 3 == 0 else "Immigration fees")
    for number in range(0, 30, 2):
        assert len(line.delivered_to(f"U{number:032d}")) == 1
    assert len(line.multicasts()) == 2  # one per language
    telegram.assert_no_violations()
    line.assert_no_violations()
    await asyncio.sleep(0)
