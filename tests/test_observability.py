"""Health, readiness, Prometheus metrics, and JSON logs with redaction."""

from __future__ import annotations

import json
import logging

import httpx
import pytest_asyncio

from bot.logs import configure
from bot.serve import KigenServer
from core.config import Settings
from core.messages import Incoming


@pytest_asyncio.fixture
async def server(database_url):
    app = KigenServer(
        Settings(_env_file=None, database_url=database_url, delivery_interval_seconds=3600), port=0
    )
    await app.start()
    yield app
    await app.stop()


async def test_health_readiness_and_metrics(server):
    await server.kigen.conversation.handle(
        Incoming.from_text("jsonl", "m1", "Do I have to carry my residence card?")
    )
    async with httpx.AsyncClient(base_url=server.url) as client:
        health = (await client.get("/healthz")).json()
        assert health["status"] == "ok" and isinstance(health["leader"], bool)
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        metrics = (await client.get("/metrics")).text
    assert 'kigen_messages_in_total{channel="jsonl"}' in metrics
    assert 'kigen_replies_total{channel="jsonl",intent="faq:carry_card"}' in metrics
    assert "kigen_webhook_seconds" in metrics and "kigen_delivery_latency_seconds" in metrics
    assert "kigen_outbox_rows" in metrics


async def test_readiness_reports_pending_migrations(server):
    async with server.kigen.db.engine.begin() as connection:
        await connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'old'")
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/readyz")
    assert (response.status_code, response.json()) == (503, {"status": "migrations pending"})


def test_logs_are_json_and_redacted(capsys):
    configure("INFO")
    try:
        logging.getLogger("kigen.test").info("resident wrote 4821 7390 5569 and ZX73915528QK")
    finally:
        logging.getLogger().handlers.clear()
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["level"] == "info" and record["logger"] == "kigen.test"
    assert "4821" not in record["event"] and "ZX73915528QK" not in record["event"]
    assert "[my number]" in record["event"]


async def test_message_text_is_not_logged_unless_asked(kigen, caplog):
    caplog.set_level("INFO")
    await kigen.conversation.handle(Incoming.from_text("jsonl", "quiet", "secret question text"))
    assert "secret question text" not in caplog.text
    kigen.settings.log_messages = True
    await kigen.conversation.handle(Incoming.from_text("jsonl", "loud", "call me on 090-1234-5678"))
    assert "call me on [phone]" in caplog.text and "1234" not in caplog.text
