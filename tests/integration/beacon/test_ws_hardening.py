"""/ws hardening through real sockets: the handshake's Origin, binary frames, and whose events a subscriber sees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models

MOCK_ONLY = {"models": [{"id": "m", "route": [{"kind": "mock"}]}]}
KEYS = {"GATEWAY_API_KEYS": "team-a:key-a-secret,team-b:key-b-secret", "ADMIN_API_KEY": "admin-key-secret"}


def ws_url(gw: Any) -> str:
    return f"ws://127.0.0.1:{gw.port}/ws"


@contextmanager
def opened(gw: Any, key: str = "", **kwargs: Any) -> Iterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with connect(ws_url(gw), open_timeout=5, additional_headers=headers, **kwargs) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "connection"
        yield ws


def refused_status(gw: Any, origin: str) -> int:
    with pytest.raises(InvalidStatus) as refused, connect(ws_url(gw), open_timeout=5, origin=Origin(origin)):
        pass
    return refused.value.response.status_code


def test_a_foreign_origin_is_refused_at_the_handshake(gateway_factory: GatewayFactory) -> None:
    """Browsers do not apply CORS to WebSockets, so the server must check Origin itself: the websockets
    library's own server answers 403 to an Origin outside `origins=[...]`, and gorilla/websocket's Upgrader
    refuses cross-origin handshakes by default. Clients that send no Origin are not browsers and are let in."""
    gw = gateway_factory(MOCK_ONLY, CORS_ORIGINS="https://beacon.example")
    assert refused_status(gw, "https://evil.example") == 403
    assert refused_status(gw, "null") == 403  # a sandboxed iframe or a file:// page
    with opened(gw, origin=Origin("https://beacon.example")) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"
    with opened(gw) as ws:  # no Origin: a server-side client
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"
    closed = gateway_factory(MOCK_ONLY)  # no CORS_ORIGINS: no page may open it
    assert refused_status(closed, "https://beacon.example") == 403
    anyone = gateway_factory(MOCK_ONLY, CORS_ORIGINS="*")
    with opened(anyone, origin=Origin("https://evil.example")):
        pass


def test_a_binary_frame_closes_with_1003(gateway_factory: GatewayFactory) -> None:
    """RFC 6455 7.4.1: 1003 is the close code for data an endpoint cannot accept. aiohttp's receive_str raises
    TypeError on a binary frame and leaves the answer to the app; here the app closes cleanly."""
    gw = gateway_factory(MOCK_ONLY)
    with opened(gw) as ws:
        ws.send(b"\x00\x01binary")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    with opened(gw) as ws:  # the gateway carries on
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"


@contextmanager
def subscribed(gw: Any, key: str) -> Iterator[ClientConnection]:
    with opened(gw, key) as ws:
        ws.send(json.dumps({"type": "subscribe"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"
        yield ws


def call(gw: Any, key: str) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.headers["x-request-id"]


def events(ws: ClientConnection, kind: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < count:
        raw = ws.recv(timeout=10)
        assert isinstance(raw, str) and "team-" not in raw and "api_key" not in raw, raw
        message = json.loads(raw)
        if message["type"] == kind:
            found.append(message)
    return found


def test_subscribers_see_their_own_calls_and_every_health_change(gateway_factory: GatewayFactory, upstreams) -> None:
    """Call events are scoped to the subscriber's API key (the admin key sees all); no event names a key.
    Health changes are about deployments, not tenants, and go to everyone."""
    a, _ = upstreams
    config = models({"kind": "vllm", "name": "a", "base_url": a.base_url})
    gw = gateway_factory(config, {"health_check": 0.2, "timeout": 1}, **KEYS)
    with (
        subscribed(gw, "key-a-secret") as team_a,
        subscribed(gw, "key-b-secret") as team_b,
        subscribed(gw, "admin-key-secret") as admin,
    ):
        b_first = call(gw, "key-b-secret")
        a_only = call(gw, "key-a-secret")
        b_second = call(gw, "key-b-secret")
        # events arrive in call order, so another tenant's would come before the subscriber's own
        assert [e["request_id"] for e in events(team_a, "call_completed", 1)] == [a_only]
        assert [e["request_id"] for e in events(team_b, "call_completed", 2)] == [b_first, b_second]
        assert [e["request_id"] for e in events(admin, "call_completed", 3)] == [b_first, a_only, b_second]
        a.behaviour = {"health_status": 503}
        for ws in (team_a, team_b, admin):
            [health] = events(ws, "provider_health", 1)
            assert health["provider"] == "a" and health["healthy"] is False


def test_on_an_open_gateway_every_subscriber_sees_every_call(gateway_factory: GatewayFactory) -> None:
    """With no client keys every caller is anonymous: there is no tenant to scope to, so nothing changes."""
    gw = gateway_factory(MOCK_ONLY)
    with subscribed(gw, "") as first, subscribed(gw, "") as second:
        rid = call(gw, "")
        for ws in (first, second):
            assert [e["request_id"] for e in events(ws, "call_completed", 1)] == [rid]
