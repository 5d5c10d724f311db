"""Active health checks against real aiohttp servers on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from routing.config.schema import DeploymentConfig
from routing.upstream.health import HealthMonitor, HealthPolicy, probe_target
from routing.upstream.transport import HttpTransport

from .conftest import FakeUpstream

SECRET = "sk-test-DO-NOT-LEAK-0123456789"


def deployment(kind: str, base_url: str, **kw: Any) -> DeploymentConfig:
    return DeploymentConfig(
        name="d", model_id="m", kind=kind, provider="p", base_url=base_url, provider_model_id="x", weight=1, **kw
    )


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    """The gateway's one upstream client: probes go through its pool."""
    transport = HttpTransport()
    await transport.start()
    yield transport
    await transport.close()


class Changes:
    """Records on_change calls and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, str]] = []
        self._event = asyncio.Event()

    def __call__(self, key: str, healthy: bool, detail: str) -> None:
        self.calls.append((key, healthy, detail))
        self._event.set()

    async def next(self) -> tuple[str, bool, str]:
        await asyncio.wait_for(self._event.wait(), 5.0)
        self._event.clear()
        return self.calls[-1]


async def test_local_health_goes_down_and_comes_back(upstream: FakeUpstream, transport: HttpTransport) -> None:
    target = probe_target(deployment("vllm", f"{upstream.url}/v1"), default_interval=60.0, timeout=2.0)
    assert target is not None
    changes = Changes()
    monitor = HealthMonitor(transport.get, [target], changes)
    await monitor.start()
    try:
        assert await monitor.check("m/d")
        assert monitor.state("m/d").status == "healthy"
        upstream.status = 500
        assert not await monitor.check("m/d")
        assert monitor.healthy("m/d")  # one failed probe is not enough
        assert not await monitor.check("m/d")
        assert changes.calls == [("m/d", False, "HTTP 500")]
        await upstream.stop()
        assert not await monitor.check("m/d")
        state = monitor.state("m/d")
        assert (state.healthy, state.consecutive_failures) == (False, 3)
        assert state.last_error.startswith("connection failed")
        upstream.status = 200
        await upstream.start()
        assert await monitor.check("m/d")
        assert changes.calls[-1] == ("m/d", True, "")
        assert monitor.state("m/d").last_check is not None
    finally:
        await monitor.close()
    paths = [path for path, _ in upstream.seen]
    assert set(paths) == {"/health"} and len(paths) >= 4  # start() probed once too


async def test_loop_probes_at_once_then_every_interval(upstream: FakeUpstream, transport: HttpTransport) -> None:
    target = probe_target(
        deployment("vllm", f"{upstream.url}/v1", health_interval=0.05), default_interval=60.0, timeout=1.0
    )
    assert target is not None
    changes = Changes()
    monitor = HealthMonitor(transport.get, [target], changes, policy=HealthPolicy(unhealthy_after=2))
    assert monitor.state("m/d").status == "unknown" and monitor.healthy("m/d")
    await monitor.start()
    try:
        for _ in range(100):
            if monitor.state("m/d").last_check is not None:
                break
            await asyncio.sleep(0.01)
        assert monitor.state("m/d").status == "healthy"
        upstream.status = 503
        assert await changes.next() == ("m/d", False, "HTTP 503")
        upstream.status = 200
        assert await changes.next() == ("m/d", True, "")
    finally:
        await monitor.close()
    assert (await transport.get(target.url, {}, 1.0, 0))[0] == 200  # the shared transport belongs to its owner


async def test_hosted_probe_sends_bearer_and_never_leaks_the_key(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture, transport: HttpTransport
) -> None:
    caplog.set_level(logging.DEBUG)
    dep = deployment("openai", f"{upstream.url}/v1", api_key=SECRET, health_interval=30.0)
    target = probe_target(dep, default_interval=0.0, timeout=2.0)
    assert target is not None
    changes = Changes()
    monitor = HealthMonitor(transport.get, [target], changes, policy=HealthPolicy(unhealthy_after=1))
    await monitor.start()
    try:
        assert await monitor.check("m/d")
        assert upstream.seen[-1] == ("/v1/models", f"Bearer {SECRET}")
        upstream.status = 401
        assert not await monitor.check("m/d")
        await upstream.stop()
        assert not await monitor.check("m/d")
    finally:
        await monitor.close()
    assert changes.calls == [("m/d", False, "HTTP 401")]
    assert "unhealthy" in caplog.text
    shown = [repr(monitor.state("m/d")), repr(monitor.states()), repr(target), repr(changes.calls), caplog.text]
    assert all(SECRET not in text for text in shown)


async def test_timeout_is_a_failure(upstream: FakeUpstream, transport: HttpTransport) -> None:
    upstream.delay = 0.5
    target = probe_target(deployment("vllm", upstream.url, health_interval=60.0), 0.0, timeout=0.1)
    assert target is not None
    monitor = HealthMonitor(transport.get, [target])
    await monitor.start()
    try:
        assert not await monitor.check("m/d")
    finally:
        await monitor.close()
    assert monitor.state("m/d").last_error == "timeout after 0.1s"


async def test_mock_and_disabled_are_not_probed(transport: HttpTransport) -> None:
    assert probe_target(deployment("mock", "mock://local", health_interval=1.0), 1.0) is None
    monitor = HealthMonitor(transport.get, [])
    await monitor.start()
    await monitor.close()
    assert monitor.healthy("m/mock")
