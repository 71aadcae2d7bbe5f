"""The Messaging API client Kigen opens: the environment's proxy is read once, not on
every call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import aiohttp
import pytest
import pytest_asyncio
from linebot.v3.messaging import PushMessageRequest, TextMessage

from bot.line import open_api
from core.config import Settings

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
PUSH = PushMessageRequest(to="U1", messages=[TextMessage(text="hi")])


@pytest_asyncio.fixture
async def proxy(monkeypatch) -> AsyncIterator[list[bytes]]:
    """A forward proxy named by HTTP_PROXY and HTTPS_PROXY: it records each request line
    and answers plain requests as LINE would; the tunnel to LINE itself it refuses."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        seen.append(lines[0])
        if lines[0].startswith(b"CONNECT"):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        else:
            length = next(
                int(line.split(b":")[1])
                for line in lines
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

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    address = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", address)
    monkeypatch.setenv("HTTPS_PROXY", address)
    async with server:
        yield seen


def settings(line_api_url: str | None) -> Settings:
    return Settings(
        _env_file=None,
        line_channel_secret="secret",
        line_channel_access_token="token",
        line_api_url=line_api_url,
    )


async def test_calls_go_through_the_proxy_the_environment_named_at_start(proxy, monkeypatch):
    async with AsyncExitStack() as stack:
        api = await open_api(settings("http://line.invalid"), stack)
        monkeypatch.delenv("HTTP_PROXY")  # read once: the client keeps it
        await api.push_message(PUSH)
        assert api.api_client.rest_client.pool_manager.trust_env is False
    assert proxy == [b"POST http://line.invalid/v2/bot/message/push HTTP/1.1"]


async def test_calls_to_line_itself_go_through_the_proxy_too(proxy):
    async with AsyncExitStack() as stack:
        api = await open_api(settings(None), stack)
        with pytest.raises(aiohttp.ClientHttpProxyError):  # the proxy refuses the tunnel
            await api.push_message(PUSH)
    assert proxy == [b"CONNECT api.line.me:443 HTTP/1.1"]


async def test_no_proxy_for_line_means_none(proxy, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.line.me")
    async with AsyncExitStack() as stack:
        api = await open_api(settings(None), stack)
        assert api.api_client.rest_client.proxy is None
    assert proxy == []
