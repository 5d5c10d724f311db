"""Pure ASGI middleware at the edge, before routing: the request head's size (431) and its Host (400).

The Host check stops DNS rebinding: a web page whose name resolves to this machine reaches the gateway from a
visitor's browser with its own name in `Host`. Allowed are the names in ALLOWED_HOSTS (loopback names by
default; `*` allows any), compared without the port; a request without a Host header (HTTP/1.0, no browser
sends one) passes.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import APIError, openai_response


def host_name(value: bytes) -> str:
    """The host of a Host header value, lower-cased, without its port (`[::1]:8080` -> `[::1]`)."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text.partition("]")[0] + "]"
    return text.rpartition(":")[0] if text.count(":") == 1 else text


class RequestHeadMiddleware:
    """Refuses a request whose headers exceed `max_header_bytes`, or whose Host is not allowed, before any route."""

    def __init__(self, app: ASGIApp, max_header_bytes: int = 32 * 1024, allowed_hosts: Iterable[str] = ("*",)) -> None:
        self.app, self.max_header_bytes = app, max_header_bytes
        allowed = {h.lower() for h in allowed_hosts}
        self.allowed: frozenset[str] | None = None if "*" in allowed else frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        size, host = 0, None
        for key, value in scope.get("headers", ()):
            size += len(key) + len(value)
            if key == b"host":
                host = value
        error = None
        if size > self.max_header_bytes:
            message = f"request headers exceed {self.max_header_bytes} bytes"
            error = APIError(431, message, code="request_headers_too_large")
        elif self.allowed is not None and host is not None and host_name(host) not in self.allowed:
            name = host_name(host)[:100]
            error = APIError(400, f"host {name!r} is not allowed: add it to ALLOWED_HOSTS", code="host_not_allowed")
        if error is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": error.message[:120]})
        else:
            await openai_response(error)(scope, receive, send)
