"""Routes that declare who may call them: every route of the app is a GuardedRoute or GuardedWebSocketRoute,
whose own middleware (Starlette's per-route `middleware=`) applies its access level before the endpoint runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import session as sessions
from gateway.access import Access, AccessPolicy, Decision
from gateway.errors import APIError, openai_response
from routing.errors import GatewayError

Refusal = Callable[[GatewayError, Scope], Response]


def openai_refusal(error: GatewayError, scope: Scope) -> Response:
    return openai_response(error)


class AccessGuard:
    """Applies one route's access level: refuses with 401/403 in the route's surface shape, or lets it through
    with the key's name in the scope state (`api_key_name`). A route that takes the dashboard's session
    (`session=True`) decides a read or a same-origin WebSocket handshake as an admin call first, with the cookie
    standing for the admin key; failing that, by its own level."""

    def __init__(self, app: ASGIApp, access: Access, refusal: Refusal = openai_refusal, session: bool = False) -> None:
        self.app, self.access, self.refusal, self.session = app, access, refusal, session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        access = self.access
        if access is Access.PUBLIC:
            await self.app(scope, receive, send)
            return
        policy: AccessPolicy = scope["app"].state.access
        authorization = api_key = b""
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                authorization = value
            elif key == b"x-api-key":  # Anthropic's SDKs (and Claude Code) send the key this way
                api_key = value
        if not authorization and api_key:
            authorization = b"Bearer " + api_key
        client = scope.get("client") or ("", 0)
        decision = self._decide(policy, scope, authorization.decode("latin-1"), client[0])
        if not decision.allowed:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": decision.message[:120]})
                return
            error = APIError(decision.status, decision.message, code=decision.code)
            await self.refusal(error, scope)(scope, receive, send)
            return
        if decision.key_name:
            scope.setdefault("state", {})["api_key_name"] = decision.key_name
        await self.app(scope, receive, send)

    def _decide(self, policy: AccessPolicy, scope: Scope, authorization: str, client_ip: str) -> Decision:
        headers = scope.get("headers", ())
        if not (self.session and sessions.session_use(scope)):
            return policy.decide(self.access, authorization, client_ip, headers)
        cookie = sessions.valid(policy.admin_key_hash, sessions.cookie_value(headers), time.time())
        admin = policy.decide(Access.ADMIN, authorization, client_ip, headers, session=cookie)
        if admin.allowed or self.access is Access.ADMIN:
            return admin
        return policy.decide(self.access, authorization, client_ip, headers)


class GuardedRoute(Route):
    """An HTTP route with its access level."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        access: Access,
        methods: Sequence[str],
        refusal: Refusal = openai_refusal,
        session: bool = False,
    ) -> None:
        if session and not set(methods) <= {"GET", "HEAD"}:
            raise ValueError(f"{path}: only a read may take the session cookie (a write would be open to CSRF)")
        guard = Middleware(AccessGuard, access=access, refusal=refusal, session=session)
        super().__init__(path, endpoint, methods=list(methods), middleware=[guard])
        self.access = access


class GuardedWebSocketRoute(WebSocketRoute):
    """A WebSocket route with its access level (a refusal closes the socket with 1008 before accepting it)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, access: Access, session: bool = False) -> None:
        super().__init__(path, endpoint, middleware=[Middleware(AccessGuard, access=access, session=session)])
        self.access = access


def unguarded(routes: Sequence[BaseRoute]) -> list[str]:
    """The paths of routes that declare no access level (the app refuses to start with any)."""
    return [getattr(r, "path", repr(r)) for r in routes if not isinstance(r, GuardedRoute | GuardedWebSocketRoute)]
