"""The Messaging API client Kigen opens: the environment's proxy is read once, not on
every call."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from linebot.v3.messaging import PushMessageRequest, TextMessage

from bot.line import open_api
from core.config import Settings


async def test_calls_go_through_the_proxy_the_environment_named_at_start(monkeypatch):
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n")[0])
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        body = b'{"sentMessages": [{"id": "1", "quoteToken": "q"}]}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    settings = Settings(
        _env_file=None,
        line_channel_secret="secret",
        line_channel_access_token="token",
        line_api_url="http://line.invalid",
    )
    async with server, AsyncExitStack() as stack:
        api = await open_api(settings, stack)
        monkeypatch.delenv("HTTP_PROXY")  # read once: the client keeps it
        await api.push_message(PushMessageRequest(to="U1", messages=[TextMessage(text="hi")]))
        assert api.api_client.rest_client.pool_manager.trust_env is False
    assert seen == [b"POST http://line.invalid/v2/bot/message/push HTTP/1.1"]
