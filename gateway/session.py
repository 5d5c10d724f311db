"""The dashboard's admin session: a signed, expiring cookie that a browser sends where it cannot send an
`Authorization` header (a WebSocket handshake, a page load).

The value is `<expiry>.<nonce>.<mac>`, the MAC an HMAC-SHA256 keyed from the admin key's hash, so every worker
and replica with the same ADMIN_API_KEY accepts it and changing the key ends every session. It holds no key and
no name. A cookie counts only where `session_use` says: reads (GET/HEAD) of admin routes that take it, and the
/ws handshake from the gateway's own origin, never a state-changing route (that would be a CSRF hole).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie

from starlette.types import Scope

COOKIE = "gateway_session"
LIFETIME_S = 12 * 3600
_LABEL = b"gateway dashboard session v1"


def _mac_key(admin_key_hash: str) -> bytes:
    return hmac.new(admin_key_hash.encode(), _LABEL, hashlib.sha256).digest()


def _mac(admin_key_hash: str, payload: str) -> str:
    return hmac.new(_mac_key(admin_key_hash), payload.encode(), hashlib.sha256).hexdigest()


def issue(admin_key_hash: str, now: float, lifetime_s: int = LIFETIME_S) -> str:
    """A new session value, valid for `lifetime_s` from `now`."""
    payload = f"{int(now) + lifetime_s}.{secrets.token_hex(8)}"
    return f"{payload}.{_mac(admin_key_hash, payload)}"


def valid(admin_key_hash: str, value: str, now: float) -> bool:
    """Whether `value` was issued under this admin key and has not expired (False without an admin key)."""
    if not admin_key_hash or not value:
        return False
    payload, _, mac = value.rpartition(".")
    expiry, _, _nonce = payload.partition(".")
    if not expiry.isdigit() or not hmac.compare_digest(_mac(admin_key_hash, payload), mac):
        return False
    return now < int(expiry)


def cookie_value(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The session cookie among the raw request headers ("" when absent or unreadable)."""
    for name, raw in headers:
        if name != b"cookie":
            continue
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw.decode("latin-1"))
        except CookieError:
            continue
        if COOKIE in jar:
            return jar[COOKIE].value
    return ""


def same_origin(scope: Scope) -> bool:
    """Whether the request's `Origin` is this gateway itself (the scheme and the Host it was reached by)."""
    origin = host = ""
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            origin = value.decode("latin-1")
        elif name == b"host":
            host = value.decode("latin-1")
    if not origin or not host:
        return False
    secure = scope.get("scheme") in ("https", "wss")
    return origin.lower() == f"{'https' if secure else 'http'}://{host}".lower()


def session_use(scope: Scope) -> bool:
    """Whether a session cookie may count for this request: a read, or a WebSocket handshake from our origin."""
    if scope["type"] == "websocket":
        return same_origin(scope)
    return scope.get("method") in ("GET", "HEAD")


def set_cookie_header(value: str, secure: bool, max_age: int = LIFETIME_S) -> str:
    """The Set-Cookie value: HttpOnly, SameSite=Strict, Path=/, Secure over https; max_age 0 clears it."""
    parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
