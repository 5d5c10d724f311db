"""More limits and resilience through a real gateway: flapping health, a reload under a running stream, provider
TPM defaults from the environment, aliases sharing their model's limit, and client limits per IP."""

from __future__ import annotations

import httpx
import yaml

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.integration.limits.test_resilience import MESSAGES, chat, wait_until, weights
from tests.support.sse import parse_sse
from tests.support.upstream import default_reply


def test_flapping_deployment_is_removed_and_restored_each_time(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    config = models({"kind": "vllm", "name": "a", "base_url": a.base_url, "weight": 0.5}, route(b, 0.5))
    gw = gateway_factory(config, {"health_check": 0.15, "timeout": 1})
    assert wait_until(lambda: any(r.path == "/health" for r in a.requests))
    assert weights(gw.url) == {"a": 0.5, "b": 0.5}
    for cycle in range(3):
        a.behaviour = {"health_status": 503}
        assert wait_until(lambda: weights(gw.url) == {"a": 0.0, "b": 1.0}), (cycle, weights(gw.url))
        assert {chat(gw.url).headers["x-gateway-deployment"] for _ in range(4)} == {"b"}
        a.behaviour = {}
        assert wait_until(lambda: weights(gw.url) == {"a": 0.5, "b": 0.5}), (cycle, weights(gw.url))
    row = next(r for r in httpx.get(f"{gw.url}/routing").json()["models"]["m"]["deployments"] if r["deployment"] == "a")
    assert row["health"] == "healthy" and row["available"]


def test_reload_while_a_stream_runs(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)))
    assert weights(gw.url) == {"a": 1.0, "b": 0.0}
    body = {"model": "m", "messages": MESSAGES, "stream": True, "x_test": {"a": {"chunks": 10, "chunk_delay": 0.1}}}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=20) as resp:
        assert resp.headers["x-gateway-deployment"] == "a"
        pieces = resp.iter_bytes()
        first = next(pieces)
        gw.settings.models_path.write_text(yaml.safe_dump(models(route(a, 0.0), route(b, 1.0)), sort_keys=False))
        reloaded = httpx.post(f"{gw.url}/routing", json={"reload": True})
        assert reloaded.status_code == 200, reloaded.text
        assert weights(gw.url) == {"a": 0.0, "b": 1.0}  # applied while the stream still runs
        events = parse_sse([first, *pieces])
    assert events.done and not any("error" in c for c in events.chunks())
    assert events.content() == default_reply("a", 10)  # all ten chunks, intact
    assert [chat(gw.url).headers["x-gateway-deployment"] for _ in range(5)] == ["b"] * 5
    assert a.count == 1  # only the stream went to a


def test_provider_tpm_env_limits_its_deployments(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    # each call reserves ceil(5 / 4) + 4 + 20 = 26 and settles to the upstream's usage, 1 + 7 = 8: with a tpm of
    # 30 the second call (8 + 26 > 30) is refused, and without the variable both pass
    dep = {"kind": "deepseek", "name": "ds", "base_url": a.base_url, "api_key": "sk-test-ds"}
    gw = gateway_factory(models(dep), DEEPSEEK_TPM_LIMIT="30")
    assert [chat(gw.url, max_tokens=20).status_code for _ in range(2)] == [200, 429]
    open_gw = gateway_factory(models(dep))
    assert [chat(open_gw.url, max_tokens=20).status_code for _ in range(2)] == [200, 200]


def test_alias_and_model_share_one_rate_limit(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(models({"kind": "mock", "name": "x"}, rpm=3))

    def via(name: str) -> int:
        body = {"model": name, "messages": MESSAGES}
        return httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=20).status_code

    assert [via("m-alias"), via("m"), via("m-alias")] == [200, 200, 200]
    assert via("m") == 429 and via("m-alias") == 429


def test_client_limit_per_ip_without_api_keys(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(models({"kind": "mock", "name": "x"}), CLIENT_RPM="2")
    body = {"model": "m", "messages": MESSAGES}

    def codes(source: str, n: int) -> list[int]:
        with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=20) as client:
            return [client.post(f"{gw.url}/v1/chat/completions", json=body).status_code for _ in range(n)]

    assert codes("127.0.0.1", 3) == [200, 200, 429]
    assert codes("127.0.0.2", 3) == [200, 200, 429]  # another IP has its own budget
    assert codes("127.0.0.1", 1) == [429]
