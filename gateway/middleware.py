"""Pure ASGI middleware (no BaseHTTPMiddleware on the streaming path): a request id on every response."""

from __future__ import annotations

import os
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BATCH = 512  # request ids' random parts drawn per os.urandom call (a system call each: ~5 us per call before)
_random: list[str] = []
os.register_at_fork(after_in_child=_random.clear)  # a forked worker never reuses its parent's batch


def _random_hex() -> str:
    """16 hex digits from the OS's CSPRNG, drawn in batches."""
    if not _random:
        pool = secrets.token_hex(8 * _BATCH)
        _random[:] = [pool[i : i + 16] for i in range(0, len(pool), 16)]
    return _random.pop()


def new_request_id() -> str:
    """Unique, time-ordered, URL-safe: `gen-<ms hex><random hex>`."""
    return f"gen-{time.time_ns() // 1_000_000:x}{_random_hex()}"


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
