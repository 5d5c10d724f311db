"""`health_timeout` per deployment through real sockets: a slow /health is healthy or not by that deployment's own
probe timeout, whatever routing.yaml's `timeout` says."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import yaml

from routing.config.load import load_config
from routing.upstream.health import HealthMonitor, HealthPolicy, probe_targets
from routing.upstream.transport import HttpTransport
from tests.conftest import GatewayFactory

from .conftest import FakeUpstream


async def test_slow_health_is_judged_by_each_deployments_timeout(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.delay = 0.5  # /health answers after 0.5 s
    route = [
        {"kind": "vllm", "name": name, "base_url": f"{upstream.url}/v1", "health_timeout": timeout}
        for name, timeout in (("patient", 2), ("hasty", 0.2))
    ]
    models, routing = tmp_path / "models.yaml", tmp_path / "routing.yaml"
    models.write_text(yaml.safe_dump({"models": [{"id": "m", "route": route}]}))
    routing.write_text(yaml.safe_dump({"timeout": 1, "health_check": 60}))
    config = load_config(models, routing, {})
    targets = probe_targets(config.models[0].deployments, config.routing.health_check, config.routing.timeout)
    transport = HttpTransport()
    await transport.start()
    monitor = HealthMonitor(transport.get, targets, policy=HealthPolicy(unhealthy_after=1))
    await monitor.start()
    try:
        assert await monitor.check("m/patient")
        assert not await monitor.check("m/hasty")
    finally:
        await monitor.close()
        await transport.close()
    assert monitor.state("m/patient").status == "healthy"
    assert monitor.state("m/hasty").status == "unhealthy"
    assert monitor.state("m/hasty").last_error == "timeout after 0.2s"


def test_gateway_probes_each_deployment_with_its_timeout(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    for up in (a, b):
        up.behaviour = {"health_delay": 0.5}
    config = {
        "models": [
            {
                "id": "m",
                "route": [
                    {"kind": "vllm", "name": "a", "base_url": a.base_url, "health_timeout": 2},
                    {"kind": "vllm", "name": "b", "base_url": b.base_url, "health_timeout": 0.2},
                ],
            }
        ]
    }
    gw = gateway_factory(config, {"health_check": 0.3, "timeout": 1})

    def rows() -> dict[str, dict]:
        table = httpx.get(f"{gw.url}/routing").json()["models"]["m"]["deployments"]
        return {r["deployment"]: r for r in table}

    deadline = time.monotonic() + 8
    while rows()["b"]["health"] != "unhealthy" and time.monotonic() < deadline:
        time.sleep(0.05)
    now = rows()
    assert now["b"]["health"] == "unhealthy" and now["b"]["last_health_error"] == "timeout after 0.2s", now["b"]
    assert now["a"]["health"] == "healthy" and now["a"]["weight"] == 1.0 and now["b"]["weight"] == 0.0
