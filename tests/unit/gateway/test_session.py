"""The dashboard's session cookie: signed, expiring, tied to the admin key; where it may count."""

from __future__ import annotations

from gateway import session as sessions
from gateway.access import Access, AccessPolicy, hash_key

KEY_HASH = hash_key("sk-admin")


def test_a_cookie_is_valid_until_it_expires_and_only_under_its_key() -> None:
    value = sessions.issue(KEY_HASH, 1000.0, lifetime_s=60)
    assert sessions.valid(KEY_HASH, value, 1059.0)
    assert not sessions.valid(KEY_HASH, value, 1060.0)
    assert not sessions.valid(hash_key("another"), value, 1001.0)
    assert not sessions.valid("", value, 1001.0), "no admin key: no session"
    expiry, nonce, mac = value.split(".")
    assert not sessions.valid(KEY_HASH, f"{int(expiry) + 1}.{nonce}.{mac}", 1001.0)
    assert not sessions.valid(KEY_HASH, "x.y.z", 1001.0) and not sessions.valid(KEY_HASH, "", 1001.0)
    assert sessions.issue(KEY_HASH, 1000.0) != sessions.issue(KEY_HASH, 1000.0)


def test_the_cookie_is_read_from_the_raw_headers() -> None:
    headers = [(b"cookie", b"theme=dark; gateway_session=abc.def.123")]
    assert sessions.cookie_value(headers) == "abc.def.123"
    assert sessions.cookie_value([(b"cookie", b"theme=dark")]) == ""


def test_it_counts_for_reads_and_same_origin_websockets_only() -> None:
    def scope(kind: str, method: str = "GET", origin: str = "", scheme: str = "http") -> dict[str, object]:
        headers = [(b"host", b"gw.example:8080")] + ([(b"origin", origin.encode())] if origin else [])
        return {"type": kind, "method": method, "headers": headers, "scheme": scheme}

    assert sessions.session_use(scope("http", "GET")) and not sessions.session_use(scope("http", "POST"))
    assert sessions.session_use(scope("websocket", origin="http://gw.example:8080"))
    assert sessions.session_use(scope("websocket", origin="https://gw.example:8080", scheme="wss"))
    assert not sessions.session_use(scope("websocket", origin="http://gw.example:8080", scheme="wss"))
    assert not sessions.session_use(scope("websocket", origin="https://evil.example"))
    assert not sessions.session_use(scope("websocket"))


def test_the_cookie_header_is_strict() -> None:
    header = sessions.set_cookie_header("v", secure=True)
    assert {"HttpOnly", "SameSite=Strict", "Path=/", "Secure"} <= set(header.split("; "))
    assert "Secure" not in sessions.set_cookie_header("v", secure=False)


def test_a_session_stands_for_the_admin_key_on_admin_routes_only() -> None:
    policy = AccessPolicy.build("team:key-a", "", "sk-admin", False)
    assert policy.decide(Access.ADMIN, "", "203.0.113.9", session=True).key_name == "admin"
    assert not policy.decide(Access.ADMIN, "", "203.0.113.9").allowed
    assert not policy.decide(Access.CLIENT, "", "203.0.113.9", session=True).allowed
    wrong = policy.decide(Access.ADMIN, "Bearer wrong", "203.0.113.9", session=True)
    assert not wrong.allowed, "a wrong key sent beside the cookie is still wrong"
