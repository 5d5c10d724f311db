"""When nothing can serve, calls say 503 as /health does; a passing probe lets calls through (issue 19 item 4)."""

from __future__ import annotations

import httpx

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.integration.limits.test_resilience import chat, wait_until
from tests.support.upstream import FakeUpstream


def circuit(url: str, name: str) -> str:
    rows = httpx.get(f"{url}/routing").json()["models"]["m"]["deployments"]
    return str(next(r for r in rows if r["deployment"] == name)["circuit"])


def test_an_open_circuit_beside_a_down_alternative_is_a_503_without_connecting(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """The gateway used to connect anyway and answer 502 while /health said nothing could serve."""
    a, b = upstreams
    config = models(
        route(a, 0.5, health_path="none"),  # not probed: only its circuit speaks for it
        {"kind": "vllm", "name": "b", "base_url": b.base_url, "weight": 0.5},
    )
    gw = gateway_factory(config, {"health_check": 0.2, "timeout": 1}, CIRCUIT_FAILURE_THRESHOLD="1")
    b.behaviour = {"health_status": 503}
    assert wait_until(lambda: httpx.get(f"{gw.url}/health").json()["providers_healthy"] == 1)
    a.behaviour = {"status": 500}
    assert chat(gw.url).status_code == 502 and a.count == 1 and b.count == 0  # a fails and its circuit opens
    assert circuit(gw.url, "a") == "open" and httpx.get(f"{gw.url}/health").status_code == 503
    refused = chat(gw.url)
    assert refused.status_code == 503, refused.text
    assert (a.count, b.count) == (1, 0), "no upstream may be called when nothing can serve"
    error = refused.json()["error"]
    assert error["code"] == "no_deployment_available" and "a: circuit open" in error["message"]
    assert int(refused.headers["retry-after"]) >= 1


def test_a_passing_probe_lets_an_open_circuit_take_its_trial_at_once(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """After a restart /health said 503 for a while although calls would have succeeded."""
    a, _ = upstreams
    config = models(route(a))
    gw = gateway_factory(
        config, {"health_check": 0.3, "timeout": 1}, CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="60"
    )
    a.behaviour = {"status": 500, "health_status": 503}  # down: its probes fail and its calls fail
    assert chat(gw.url).status_code == 502
    assert wait_until(lambda: circuit(gw.url, "a") == "open")
    a.behaviour = {}  # back: the next probe passes, well within the 60 s cooldown
    assert wait_until(lambda: httpx.get(f"{gw.url}/health").status_code == 200, 3)
    assert circuit(gw.url, "a") == "half_open"
    before = a.count
    ok = chat(gw.url)
    assert ok.status_code == 200 and a.count == before + 1
    assert circuit(gw.url, "a") == "closed"
