"""What the audit found holding up (issue 15), kept so by tests where none existed: headers never cross the
gateway in either direction, the admin access matrix, oversized WebSocket frames, IPv6 literal upstreams."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from routing.upstream.http1 import Pool
from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.upstream import FakeUpstream

ADMIN = "sk-admin-0123456789"
MOCK = {"models": [{"id": "m", "route": [{"kind": "mock"}]}]}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_client_headers_are_not_forwarded_and_upstream_headers_not_relayed(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """A proxy that forwarded the client's Cookie or Authorization, or relayed the upstream's Set-Cookie, would
    mix tenants' credentials. Envoy's AI gateway and LiteLLM build the upstream request from scratch too."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=CHAT,
        headers={"Cookie": "session=client-secret", "X-Client-Thing": "1", "Authorization": "Bearer client-key"},
    )
    assert resp.status_code == 200
    sent = a.requests[-1].headers
    assert "cookie" not in sent and "x-client-thing" not in sent
    assert sent["authorization"] == "Bearer sk-test-a-secret"  # the deployment's key, never the client's
    assert "x-upstream-name" not in resp.headers  # the fake upstream sends it on every response


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/routing", {"Authorization": "Bearer wrong"}, 403),
        ("GET", "/routing", {"Authorization": f"Basic {ADMIN}"}, 401),
        ("GET", "/routing/", {}, 307),  # Starlette redirects to /routing, which then asks for the key
        ("GET", "/%72outing", {}, 401),
        ("HEAD", "/stats", {}, 401),
        ("OPTIONS", "/routing", {}, 405),
        ("GET", "/routing", {"Authorization": f"Bearer {ADMIN}"}, 200),
    ],
)
def test_the_admin_access_matrix(
    gateway_factory: GatewayFactory, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    """Percent-encoded paths are decoded before routing (as Starlette and Envoy's normalize_path do), so
    `/%72outing` is `/routing` and needs the key; a trailing slash only redirects there."""
    gw = gateway_factory(MOCK, ADMIN_API_KEY=ADMIN)
    resp = httpx.request(method, f"{gw.url}{path}", headers=headers)
    assert resp.status_code == status, resp.text
    assert ADMIN not in resp.text


def test_an_oversized_websocket_frame_closes_with_1009(gateway_factory: GatewayFactory) -> None:
    """uvicorn's ws_max_size (16 MiB) closes with 1009 Message Too Big, as RFC 6455 says; nginx would pass it on."""
    gw = gateway_factory(MOCK)
    with connect(f"ws://127.0.0.1:{gw.port}/ws", open_timeout=5, max_size=None) as ws:
        json.loads(ws.recv(timeout=5))
        ws.send("x" * (17 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_an_ipv6_literal_upstream() -> None:
    """An upstream at http://[::1]:port is reached and its Host header keeps the brackets (RFC 9110 §7.2), as
    httpx and aiohttp send it."""
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(answer, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = server.sockets[0].getsockname()[1]
    pool = Pool()
    try:
        resp = await pool.request("GET", f"http://[::1]:{port}/v1/models", {}, None, connect_timeout=2, total_timeout=5)
        assert (resp.status, await resp.read()) == (200, b"ok")
        resp.release()
    finally:
        await pool.close()
        server.close()
    assert f"Host: [::1]:{port}\r\n".encode() in seen[0]
