"""Pure ASGI middleware (no BaseHTTPMiddleware on the streaming path): a request id on every response."""

from __future__ import annotations

import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def new_request_id() -> str:
    """Unique, time-ordered, URL-safe: `gen-<ms hex><random hex>`."""
    return f"gen-{time.time_ns() // 1_000_000:x}{secrets.token_hex(8)}"


class RequestIdMiddleware:
    """Gives each HTTP request an id (scope state `request_id`) and returns it as `x-request-id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
