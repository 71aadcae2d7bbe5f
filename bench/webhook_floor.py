"""The floor under ``bench/webhook.py``: a LINE webhook server that does only what any
LINE bot must do per event, with the same libraries as Kigen: FastAPI under uvicorn,
the signature check, line-bot-sdk's parser, and one reply through line-bot-sdk's async
client. No database, no matching, no conversation.

    .venv/bin/python bench/webhook.py --server floor

runs the same load against it (this file is the server that command starts). What it
measures is the cost of the platform plumbing on this machine: Kigen cannot be cheaper
per event than this.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import uvicorn
from fastapi import FastAPI, Request, Response
from linebot.v3 import WebhookParser
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.webhook import SignatureValidator

#: About as long as one of Kigen's FAQ answers with its source line.
REPLY_TEXT = "An answer of about the length Kigen gives. " * 14


async def serve(port: int) -> None:
    secret = os.environ["KIGEN_LINE_CHANNEL_SECRET"]
    configuration = Configuration(
        host=os.environ["KIGEN_LINE_API_URL"],
        access_token=os.environ["KIGEN_LINE_CHANNEL_ACCESS_TOKEN"],
    )
    validator = SignatureValidator(secret)
    parser = WebhookParser(secret, skip_signature_verification=lambda: True)
    app = FastAPI()
    async with AsyncApiClient(configuration) as client:
        api = AsyncMessagingApi(client)

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/line/webhook")
        async def webhook(request: Request) -> Response:
            body = (await request.body()).decode("utf-8")
            if not validator.validate(body, request.headers.get("x-line-signature", "")):
                return Response(status_code=401)
            for event in parser.parse(body, ""):
                request_body = ReplyMessageRequest(
                    reply_token=event.reply_token, messages=[TextMessage(text=REPLY_TEXT)]
                )
                await api.reply_message(request_body)
            return Response(status_code=200)

        config = uvicorn.Config(
            app, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))
