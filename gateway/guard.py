"""Pure ASGI middleware at the edge: header size limit and access control, answered in OpenAI's error shape."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.access import AccessPolicy


class GuardMiddleware:
    """Refuses oversized headers (431) and calls without the right key (401/403) before any handler runs."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy | None = None, max_header_bytes: int = 32 * 1024) -> None:
        self.app, self.policy, self.max_header_bytes = app, policy, max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # one pass over the headers: their size and the (first) authorization header
        size = 0
        authorization: bytes | None = None
        for key, value in scope.get("headers", ()):
            size += len(key) + len(value)
            if authorization is None and key == b"authorization":
                authorization = value
        if size > self.max_header_bytes:
            await _refuse(
                scope, send, 431, "request_headers_too_large", f"request headers exceed {self.max_header_bytes} bytes"
            )
            return
        policy = self.policy if self.policy is not None else scope["app"].state.access
        if scope["type"] == "http" and scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("", 0)
        decision = policy.decide(
            scope["path"], (authorization or b"").decode("latin-1"), client[0], scope.get("headers", ())
        )
        if not decision.allowed:
            await _refuse(scope, send, decision.status, decision.code, decision.message)
            return
        if decision.key_name:
            scope.setdefault("state", {})["api_key_name"] = decision.key_name
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    kind = {401: "authentication_error", 403: "permission_error"}.get(status, "invalid_request_error")
    body = orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
