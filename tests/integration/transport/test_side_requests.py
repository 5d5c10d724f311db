"""Side requests (health probes, the Maps script) through the calls' pool: `HttpTransport.get` on real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.kinds import kind_spec
from adapters.registry import adapter_for
from routing.config.schema import DeploymentConfig
from routing.errors import UpstreamError
from routing.upstream.health import HealthMonitor, HealthPolicy, probe_target
from routing.upstream.transport import HttpTransport

from .conftest import RawServer, ok

SECRET = "sk-side-DO-NOT-LEAK-42"


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    transport = HttpTransport()
    await transport.start()
    yield transport
    await transport.close()


def vllm(raw: RawServer, **kw: object) -> DeploymentConfig:
    origin = raw.url.split("/v1")[0]
    return DeploymentConfig(
        name="d", model_id="m", kind="vllm", provider="local", base_url=f"{origin}/v1", provider_model_id="x",
        weight=1, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_probes_and_calls_share_one_keep_alive_connection(serve, transport: HttpTransport) -> None:
    raw = await serve(lambda req: ok(b'{"choices": []}' if req.startswith(b"POST") else b"ok"))
    dep = vllm(raw, api_key=SECRET, health_path="models")
    target = probe_target(dep, default_interval=60.0, timeout=2.0)
    assert target is not None
    monitor = HealthMonitor(transport.get, [target], policy=HealthPolicy(unhealthy_after=1))
    assert await monitor.check("m/d")
    spec = kind_spec("vllm")
    assert spec is not None
    adapter = adapter_for(spec)
    request = adapter.build(dep, {"messages": []}, stream=False)
    await transport.read_json(dep, await transport.open(dep, request, adapter, 5), adapter, request)
    assert await monitor.check("m/d")
    assert raw.connections == 1  # one client, one pool: probe, call and probe on the same socket
    probe = raw.requests[0]
    assert probe.startswith(b"GET /models HTTP/1.1\r\n") and f"Authorization: Bearer {SECRET}".encode() in probe


async def test_a_probe_reads_no_body_and_a_large_one_does_not_matter(serve, transport: HttpTransport) -> None:
    raw = await serve(lambda req: ok(b"m" * 300_000))  # a long /models list
    status, headers, body = await transport.get(raw.url, {}, 2, 0)
    assert (status, body, headers["content-length"]) == (200, b"", "300000")
    await asyncio.sleep(0.05)
    assert (await transport.get(raw.url, {}, 2, 0))[0] == 200


async def test_get_caps_the_body_it_reads(serve, transport: HttpTransport) -> None:
    raw = await serve(lambda req: ok(b"s" * 5000))
    assert (await transport.get(raw.url, {}, 2, 5000))[2] == b"s" * 5000
    with pytest.raises(UpstreamError) as info:
        await transport.get(raw.url, {}, 2, 4999)
    assert (info.value.kind, info.value.message) == ("protocol", "response body larger than 4999 bytes")


async def test_failures_are_upstream_errors_that_never_carry_the_url(serve, transport: HttpTransport) -> None:
    raw = await serve(lambda req: [])  # reads the request, never answers
    with pytest.raises(UpstreamError) as info:
        await transport.get(f"{raw.url}&key={SECRET}", {}, 0.1, 100)
    assert (info.value.kind, info.value.message) == ("timeout", "timeout after 0.1s")
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(UpstreamError) as info:
        await transport.get(f"http://127.0.0.1:{port}/maps?key={SECRET}", {}, 2, 100)
    assert info.value.kind == "connect" and info.value.message.startswith("connection failed (")
    assert SECRET not in info.value.message
    with pytest.raises(UpstreamError, match="unsupported URL scheme"):
        await transport.get(f"ftp://127.0.0.1/{SECRET}", {}, 2, 100)


async def test_monitor_records_what_the_pool_reports(serve, transport: HttpTransport) -> None:
    raw = await serve(lambda req: [b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"])
    target = probe_target(vllm(raw), default_interval=60.0, timeout=1.0)
    assert target is not None
    monitor = HealthMonitor(transport.get, [target], policy=HealthPolicy(unhealthy_after=1))
    await monitor.start()
    try:
        assert not await monitor.check("m/d")
        assert monitor.state("m/d").last_error == "HTTP 503" and not monitor.healthy("m/d")
        raw.handler = lambda req: [b"garbage\r\n\r\n"]
        assert not await monitor.check("m/d")
        assert monitor.state("m/d").last_error.startswith("connection failed (malformed HTTP response")
        raw.handler = lambda req: ok(b"")
        assert await monitor.check("m/d") and monitor.healthy("m/d")
    finally:
        await monitor.close()
    assert raw.requests[0].startswith(b"GET /health HTTP/1.1\r\n")  # vllm is probed at its origin's /health
