"""The operator's dashboard: the page (`/monitoring/dashboard.html`, `/dashboard`), its static assets (uPlot
vendored, no CDN: the gateway may run offline), and the sign-in that trades the admin key for the session cookie
(`POST /monitoring/session`; `DELETE` signs out). See gateway/session.py for the cookie and where it counts."""

from __future__ import annotations

import functools
import hmac
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Scope

from gateway import session as sessions
from gateway.access import Access, AccessPolicy, hash_key
from gateway.errors import APIError
from gateway.requests import read_json
from routing.errors import GatewayError

STATIC = Path(__file__).resolve().parent / "static"
# the only files served from STATIC, with their types: nothing else under it is reachable
ASSETS = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "vendor/uplot/uPlot.iife.min.js": "text/javascript",
    "vendor/uplot/uPlot.min.css": "text/css",
    "vendor/uplot/LICENSE": "text/plain",
    "vendor/uplot/VERSION": "text/plain",
}
# the page loads only its own files and talks only to its own origin (`'self'` covers ws/wss there)
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@functools.cache
def _page(name: str) -> str:
    return (STATIC / name).read_text()


def page_response(signed_in: bool, status: int = 200, message: str = "") -> Response:
    """The dashboard page, in its sign-in state when the caller is not (yet) an admin."""
    html = _page("dashboard.html").replace("{{state}}", "signed-in" if signed_in else "signed-out")
    html = html.replace("{{message}}", _escape(message))
    return Response(html, status_code=status, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


async def page(request: Request) -> Response:
    return page_response(signed_in=True)


def sign_in_refusal(error: GatewayError, scope: Scope) -> Response:
    """A refused page load gets the page's sign-in form (with why), not a JSON error."""
    status = getattr(error, "status", 401)
    message = "" if status == 401 else error.message
    return page_response(signed_in=False, status=status, message=message)


async def asset(request: Request) -> Response:
    name = request.path_params["path"]
    media = ASSETS.get(name)
    if media is None:
        raise APIError(404, f"no dashboard asset {name!r}", code="not_found")
    return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": "no-cache"})


async def sign_in(request: Request) -> JSONResponse:
    """`{"key": "<admin key>"}` -> 200 and the session cookie; a wrong key -> 403 (the key is never echoed).
    Without ADMIN_API_KEY there is nothing to sign in with: the loopback rule decides, and no cookie is set."""
    if request.headers.get("origin") and not sessions.same_origin(request.scope):
        raise APIError(403, "sign in from the gateway's own dashboard page", code="cross_origin")
    policy: AccessPolicy = request.app.state.access
    if not policy.admin_key_hash:
        client = request.client.host if request.client else ""
        decision = policy.decide(Access.ADMIN, "", client, request.scope.get("headers", ()))
        if not decision.allowed:
            raise APIError(decision.status, decision.message, code=decision.code)
        return JSONResponse({"signed_in": True, "via": "loopback"})
    body = await read_json(request, 4096)
    key = body.get("key")
    if not isinstance(key, str) or not key.strip():
        raise APIError(400, 'send {"key": "<admin key>"}', code="invalid_value", param="key")
    if not hmac.compare_digest(policy.admin_key_hash, hash_key(key)):
        raise APIError(403, "this key may not use admin routes", code="invalid_admin_key")
    value = sessions.issue(policy.admin_key_hash, time.time())
    response = JSONResponse({"signed_in": True, "via": "session", "expires_in_s": sessions.LIFETIME_S})
    response.headers["Set-Cookie"] = sessions.set_cookie_header(value, secure=request.url.scheme == "https")
    response.headers["Cache-Control"] = "no-store"
    return response


async def sign_out(request: Request) -> JSONResponse:
    response = JSONResponse({"signed_in": False})
    response.headers["Set-Cookie"] = sessions.set_cookie_header("", secure=request.url.scheme == "https", max_age=0)
    return response
