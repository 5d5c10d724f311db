"""Recovery after outages, Retry-After and queueing, driven through a real gateway and real upstream sockets."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.integration.limits.test_resilience import chat, wait_until, weights


def row(url: str, name: str) -> dict:
    rows = httpx.get(f"{url}/routing").json()["models"]["m"]["deployments"]
    return next(r for r in rows if r["deployment"] == name)


def down_then_reload(gateway_factory: GatewayFactory, upstreams) -> tuple[Any, Any]:
    """A probed vLLM deployment `a` beside `b`; `a` fails its probes, then the config is reloaded."""
    a, b = upstreams
    config = models({"kind": "vllm", "name": "a", "base_url": a.base_url, "weight": 0.5}, route(b, 0.5))
    gw = gateway_factory(config, {"health_check": 0.2, "timeout": 1})
    a.behaviour = {"health_status": 503}
    assert wait_until(lambda: weights(gw.url) == {"a": 0.0, "b": 1.0}), weights(gw.url)
    assert httpx.post(f"{gw.url}/routing", json={"reload": True}).status_code == 200
    return gw, a


def test_deployment_down_across_a_reload_gets_its_weight_back(gateway_factory: GatewayFactory, upstreams) -> None:
    gw, a = down_then_reload(gateway_factory, upstreams)
    # `a` recovers before the new monitor could have seen it fail again: its first good probe must count
    a.behaviour = {}
    assert wait_until(lambda: weights(gw.url) == {"a": 0.5, "b": 0.5}), weights(gw.url)
    assert row(gw.url, "a")["available"]


def test_reload_keeps_what_health_checks_knew(gateway_factory: GatewayFactory, upstreams) -> None:
    gw, _ = down_then_reload(gateway_factory, upstreams)
    time.sleep(0.1)
    assert weights(gw.url) == {"a": 0.0, "b": 1.0}
    assert row(gw.url, "a")["health"] == "unhealthy", "a reload must not forget a known outage"


def test_reload_that_stops_probing_a_down_deployment_restores_it(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    dep_a = {"kind": "vllm", "name": "a", "base_url": a.base_url, "weight": 0.5}
    gw = gateway_factory(models(dep_a, route(b, 0.5)), {"health_check": 0.2, "timeout": 1})
    a.behaviour = {"health_status": 503}
    assert wait_until(lambda: weights(gw.url) == {"a": 0.0, "b": 1.0}), weights(gw.url)
    # nothing will ever probe `a` again, so nothing could ever bring it back: the reload must
    models_path = gw.settings.models_path
    models_path.write_text(models_path.read_text().replace("kind: vllm", "kind: vllm\n    health_path: none"))
    assert httpx.post(f"{gw.url}/routing", json={"reload": True}).status_code == 200
    assert wait_until(lambda: weights(gw.url) == {"a": 0.5, "b": 0.5}), weights(gw.url)


def test_retry_after_429_on_the_only_deployment_is_honoured(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    a.behaviour = {"status": 429, "retry_after": "30"}
    first = chat(gw.url)
    assert first.status_code == 429, first.text
    assert a.count == 1, "an explicit Retry-After must not be forced past"
    assert 29 <= int(first.headers["retry-after"]) <= 30
    second = chat(gw.url)
    assert second.status_code == 429 and a.count == 1
    assert 1 <= int(second.headers["retry-after"]) <= 30
    assert second.json()["error"]["code"] == "rate_limit_exceeded"


def test_retry_after_503_on_the_only_deployment_gives_503(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    a.behaviour = {"status": 503, "retry_after": "20"}
    first = chat(gw.url)
    assert first.status_code == 503 and a.count == 1, first.text
    assert 19 <= int(first.headers["retry-after"]) <= 20
    second = chat(gw.url)
    assert second.status_code == 503 and a.count == 1
    assert int(second.headers["retry-after"]) <= 20


def test_retry_after_is_the_smallest_wait_of_all_blocked(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    gw = gateway_factory(models(route(a, 0.5), route(b, 0.5)))
    a.behaviour = {"status": 429, "retry_after": "30"}
    b.behaviour = {"status": 429, "retry_after": "5"}
    first = chat(gw.url)
    assert first.status_code == 429 and (a.count, b.count) == (1, 1), first.text
    assert first.headers["retry-after"] == "5"
    second = chat(gw.url)
    assert second.status_code == 429 and (a.count, b.count) == (1, 1)
    assert int(second.headers["retry-after"]) <= 5


def test_open_circuit_is_never_pushed_past_and_its_trial_is_one_at_a_time(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    """Issue 19: an open circuit used to be pushed past (one forced request per call, a 502) while /health said
    503; nothing can serve until the cooldown ends, and then one trial decides."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a)), CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="2")
    a.behaviour = {"status": 500}
    assert chat(gw.url).status_code == 502
    assert a.count == 1, "the attempt that trips the circuit is the last request it lets through"
    refused = chat(gw.url)
    assert refused.status_code == 503 and a.count == 1, refused.text
    assert refused.json()["error"]["code"] == "no_deployment_available" and "circuit open" in refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert httpx.get(f"{gw.url}/health").status_code == 503  # the call and /health say the same
    assert wait_until(lambda: httpx.get(f"{gw.url}/health").status_code == 200, 4)  # the cooldown is over
    a.behaviour = {"delay_headers": 1.5}
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(chat(gw.url).status_code)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [200, 503, 503, 503], results
    assert a.count == 2, "a half-open circuit lets one trial through, not every concurrent call"
    assert row(gw.url, "a")["circuit"] == "closed"
    assert chat(gw.url).status_code == 200


def test_queueing_for_max_concurrent_is_bounded_by_queue_timeout(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    config = models(route(a, max_concurrent=1))
    config["models"].append({"id": "n", "route": [{"kind": "mock"}]})
    gw = gateway_factory(config, ROUTER_QUEUE_TIMEOUT="0.5")
    holder = threading.Thread(target=lambda: chat(gw.url, x_test={"a": {"delay_headers": 3.0}}))
    holder.start()
    assert wait_until(lambda: a.count == 1)
    stop = threading.Event()

    def other_traffic() -> None:
        # calls finishing elsewhere wake the queued call up; none of them may restart its wait
        while not stop.is_set():
            httpx.post(
                f"{gw.url}/v1/chat/completions",
                json={"model": "n", "messages": [{"role": "user", "content": "hi"}]},
                timeout=5,
            )
            time.sleep(0.05)

    noise = threading.Thread(target=other_traffic)
    noise.start()
    try:
        began = time.monotonic()
        queued = chat(gw.url)
        elapsed = time.monotonic() - began
    finally:
        stop.set()
        noise.join(10)
        holder.join(10)
    assert queued.status_code == 503, queued.text
    assert queued.json()["error"]["code"] == "no_deployment_available"
    assert 0.4 <= elapsed < 2.0, elapsed
    assert a.count == 1
