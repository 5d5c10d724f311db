"""The dashboard's sign-in and session cookie through a real gateway: where the cookie counts (reads of admin
routes, the same-origin /ws handshake) and where it must not (admin writes, client routes, other origins)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from gateway import session as sessions
from gateway.access import hash_key
from tests.conftest import GatewayFactory

ADMIN = "sk-admin-dashboard-0123456789"
KEYS = {"GATEWAY_API_KEYS": "team-a:key-a-secret", "ADMIN_API_KEY": ADMIN}
MOCK = {"models": [{"id": "m", "route": [{"kind": "mock", "name": "mock-eu", "region": "eu-west"}]}]}


def sign_in(gw: Any, key: str = ADMIN, **headers: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/monitoring/session", json={"key": key}, headers=headers)


def cookie_of(response: httpx.Response) -> str:
    return response.cookies[sessions.COOKIE]


def test_sign_in_sets_a_strict_httponly_cookie_and_a_wrong_key_is_refused(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, **KEYS)
    wrong = sign_in(gw, "sk-not-the-admin-key")
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "invalid_admin_key" and "type" in wrong.json()["error"]
    assert "sk-not-the-admin-key" not in wrong.text and "set-cookie" not in wrong.headers
    client_key = sign_in(gw, "key-a-secret")
    assert client_key.status_code == 403, "a client key is not the admin key"
    empty = httpx.post(f"{gw.url}/monitoring/session", json={})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "key"

    ok = sign_in(gw)
    assert ok.status_code == 200 and ok.json()["signed_in"] is True
    header = ok.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", f"Max-Age={sessions.LIFETIME_S}"):
        assert attribute in header, header
    assert "Secure" not in header, "plain http: a Secure cookie would never come back"
    assert ADMIN not in header and hash_key(ADMIN) not in header

    foreign = sign_in(gw, Origin="https://evil.example")
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers


def test_the_cookie_opens_the_admin_reads_and_nothing_else(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, **KEYS)
    jar = {sessions.COOKIE: cookie_of(sign_in(gw))}
    for path in ("/stats", "/admin/stats", "/monitoring/state", "/monitoring/dashboard.html", "/dashboard"):
        assert httpx.get(f"{gw.url}{path}").status_code == 401, path
        assert httpx.get(f"{gw.url}{path}", cookies=jar).status_code == 200, path
    page = httpx.get(f"{gw.url}/dashboard", cookies=jar)
    assert 'data-state="signed-in"' in page.text and "default-src 'none'" in page.headers["content-security-policy"]
    # a state-changing admin route: the cookie would make it a CSRF target
    reload = httpx.post(f"{gw.url}/routing", json={"reload": True}, cookies=jar)
    assert reload.status_code == 401 and reload.json()["error"]["code"] == "missing_api_key"
    # client routes take client keys only
    chat = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": []}, cookies=jar)
    assert chat.status_code == 401
    assert httpx.get(f"{gw.url}/v1/models", cookies=jar).status_code == 401
    # /metrics is not the dashboard's
    assert httpx.get(f"{gw.url}/metrics", cookies=jar).status_code == 401


def test_a_forged_or_expired_cookie_is_refused_and_sign_out_clears_it(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, **KEYS)
    good = cookie_of(sign_in(gw))
    expiry, nonce, mac = good.split(".")
    forged = f"{int(expiry) + 10**6}.{nonce}.{mac}"
    expired = sessions.issue(hash_key(ADMIN), time.time() - 2 * sessions.LIFETIME_S)
    other_key = sessions.issue(hash_key("some-other-admin-key"), time.time())
    for value in (forged, expired, other_key, "garbage"):
        assert httpx.get(f"{gw.url}/stats", cookies={sessions.COOKIE: value}).status_code == 401, value
    page = httpx.get(f"{gw.url}/dashboard", cookies={sessions.COOKIE: forged})
    assert page.status_code == 401 and 'data-state="signed-out"' in page.text and 'id="sign-in-form"' in page.text
    out = httpx.delete(f"{gw.url}/monitoring/session", cookies={sessions.COOKIE: good})
    assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
    assert out.cookies.get(sessions.COOKIE) in (None, "")


def events_until(ws: Any, kind: str, within: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        event = json.loads(ws.recv(timeout=deadline - time.monotonic()))
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind} event")


def test_the_ws_takes_the_cookie_only_from_the_gateways_own_origin(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, **KEYS)
    cookie = f"{sessions.COOKIE}={cookie_of(sign_in(gw))}"
    url = f"ws://127.0.0.1:{gw.port}/ws"
    own = Origin(f"http://127.0.0.1:{gw.port}")
    with connect(url, open_timeout=5, origin=own, additional_headers={"Cookie": cookie}) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "connection"
        ws.send(json.dumps({"type": "subscribe"}))
        events_until(ws, "subscribed")
        sent = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer key-a-secret"},
        )
        assert sent.status_code == 200
        event = events_until(ws, "call_completed")  # team-a's call: only the admin sees it
        assert event["request_id"] == sent.headers["x-request-id"] and "ttft_ms" in event
    with (
        pytest.raises(InvalidStatus) as foreign,
        connect(url, open_timeout=5, origin=Origin("https://evil.example"), additional_headers={"Cookie": cookie}),
    ):
        pass
    assert foreign.value.response.status_code == 403
    # no Origin (not a browser): the cookie does not count, a key is needed as before
    with pytest.raises(InvalidStatus), connect(url, open_timeout=5, additional_headers={"Cookie": cookie}):
        pass
    # our origin without a cookie: still a client key's decision
    with pytest.raises(InvalidStatus), connect(url, open_timeout=5, origin=own):
        pass


def test_without_an_admin_key_the_loopback_rule_applies(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, GATEWAY_API_KEYS="team-a:key-a-secret")  # HOST=127.0.0.1, no ADMIN_API_KEY
    page = httpx.get(f"{gw.url}/dashboard")
    assert page.status_code == 200 and 'data-state="signed-in"' in page.text
    signed = httpx.post(f"{gw.url}/monitoring/session", json={"key": "anything"})
    assert signed.status_code == 200 and signed.json()["via"] == "loopback" and "set-cookie" not in signed.headers
    proxied = httpx.get(f"{gw.url}/dashboard", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403 and 'data-state="signed-out"' in proxied.text
    url = f"ws://127.0.0.1:{gw.port}/ws"
    with connect(url, open_timeout=5, origin=Origin(f"http://127.0.0.1:{gw.port}")) as ws:  # the local dashboard
        assert json.loads(ws.recv(timeout=5))["type"] == "connection"


def test_assets_are_served_from_the_package_and_nothing_else_is(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, **KEYS)
    script = httpx.get(f"{gw.url}/monitoring/static/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "uPlot" in script.text
    assert "MIT" in httpx.get(f"{gw.url}/monitoring/static/vendor/uplot/LICENSE").text
    assert httpx.get(f"{gw.url}/monitoring/static/dashboard.js").status_code == 200
    # only the listed files: not the page's template, not the package's modules (%2e%2e is `..` kept encoded)
    for path in ("dashboard.html", "%2e%2e/monitoring.py", "vendor/uplot/%2e%2e/%2e%2e/dashboard.py", "nope.js"):
        assert httpx.get(f"{gw.url}/monitoring/static/{path}").status_code == 404, path


def test_state_names_every_deployment_and_counts_the_calls(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, **KEYS)
    for _ in range(3):
        answer = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer key-a-secret"},
        )
        assert answer.status_code == 200
    admin = {"Authorization": f"Bearer {ADMIN}"}
    deadline = time.monotonic() + 5
    while True:
        state = httpx.get(f"{gw.url}/monitoring/state", headers=admin).json()
        if state["recent"]["total"]["calls"] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    (row,) = state["deployments"]
    assert (row["model"], row["deployment"], row["region"], row["health"]) == ("m", "mock-eu", "eu-west", "not probed")
    assert row["circuit"] == "closed" and row["in_flight"] == 0
    total = state["recent"]["total"]
    assert total["calls"] == 3 and total["success_rate"] == 1.0 and total["latency_p95_ms"] is not None
    assert state["recent"]["deployments"]["m/mock-eu"]["calls"] == 3
    assert len(state["recent"]["last_calls"]) == 3
    assert "spill_budget_usd_per_hour" in state["local_first"]
