"""Pure ASGI middleware at the edge, before routing: the request-header size limit (431)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import APIError, openai_response


class HeaderLimitMiddleware:
    """Refuses requests whose headers exceed `max_header_bytes` before any route runs."""

    def __init__(self, app: ASGIApp, max_header_bytes: int = 32 * 1024) -> None:
        self.app, self.max_header_bytes = app, max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            size = 0
            for key, value in scope.get("headers", ()):
                size += len(key) + len(value)
            if size > self.max_header_bytes:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": "request headers too large"})
                    return
                error = APIError(
                    431, f"request headers exceed {self.max_header_bytes} bytes", code="request_headers_too_large"
                )
                await openai_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
