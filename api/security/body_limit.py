"""Request body cap: bodies over the limit are answered 413 before any route sees them.

A pure ASGI middleware. A declared ``Content-Length`` over the cap is refused at once; otherwise
the body is read (at most cap + 1 bytes, so memory stays bounded even for chunked uploads that
declare nothing) and replayed to the application. Later ``receive`` calls go to the server, so
disconnect detection (SSE) keeps working.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAYLOAD_TOO_LARGE_CODE = "payload_too_large"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before sending its body: let the app see that.
                await self._app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self._app(scope, _replay([body], None, receive), send)

    async def _refuse(self, send: Send) -> None:
        payload = json.dumps(
            {
                "code": PAYLOAD_TOO_LARGE_CODE,
                "message": f"request body exceeds {self._max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(buffered: list[Message], then: Message | None, receive: Receive) -> Receive:
    pending: list[Any] = [*buffered, *([then] if then is not None else [])]

    async def replay() -> Message:
        if pending:
            message: Message = pending.pop(0)
            return message
        return await receive()

    return replay
