"""Named `cost`, `latency` and provider-keyed `weighted` strategies, as `GET /routing` shows them and as traffic
follows them, on in-process mock deployments."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import GatewayFactory

MESSAGES = [{"role": "user", "content": "x"}]


def mock_models(model_id: str = "m") -> dict[str, Any]:
    cheap = {"prompt": "0.1", "completion": "0.1"}
    return {
        "models": [
            {
                "id": model_id,
                "route": [
                    {"kind": "mock", "name": "dear", "pricing": {"prompt": "1", "completion": "1"}},
                    {"kind": "mock", "name": "cheap-a", "pricing": cheap},
                    {"kind": "mock", "name": "cheap-b", "pricing": cheap},
                ],
            }
        ]
    }


def weights(url: str, model_id: str = "m") -> tuple[str, dict[str, float]]:
    body = httpx.get(f"{url}/routing", timeout=10).json()["models"][model_id]
    return body["strategy"], {row["deployment"]: row["weight"] for row in body["deployments"]}


def served(url: str, n: int, model_id: str = "m") -> dict[str, int]:
    counts: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=10) as http:
        for _ in range(n):
            resp = http.post("/v1/chat/completions", json={"model": model_id, "messages": MESSAGES, "max_tokens": 2})
            assert resp.status_code == 200
            name = resp.headers["x-gateway-deployment"]
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_cost_strategy_shares_between_equally_cheap_deployments(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(mock_models(), {"strategies": {"cheapest": {"kind": "cost"}}, "routing_strategy": "cheapest"})
    assert weights(gw.url) == ("cheapest", {"dear": 0.0, "cheap-a": 0.5, "cheap-b": 0.5})
    counts = served(gw.url, 60)
    # P(one cheap deployment gets none of 60) = 2 * 0.5**60: both are used, the dear one never is
    assert set(counts) == {"cheap-a", "cheap-b"}, counts


def test_latency_strategy_keeps_configured_weights_until_measured(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(mock_models(), {"model_strategies": {"m": "latency"}})
    strategy, shown = weights(gw.url)
    assert strategy == "latency"
    assert shown == {"dear": 0.333333, "cheap-a": 0.333333, "cheap-b": 0.333333}


def test_weighted_strategy_by_provider_totals_as_configured(gateway_factory: GatewayFactory) -> None:
    models = {
        "models": [
            {
                "id": "m",
                "route": [
                    {"kind": "mock", "name": "node-1", "provider": "golem"},
                    {"kind": "mock", "name": "node-2", "provider": "golem"},
                    {"kind": "mock", "name": "burst", "provider": "modal"},
                ],
            }
        ]
    }
    routing = {"strategies": {"split": {"kind": "weighted", "weights": {"golem": 70, "modal": 30}}}}
    gw = gateway_factory(models, {**routing, "model_strategies": {"m": "split"}})
    assert weights(gw.url) == ("split", {"node-1": 0.35, "node-2": 0.35, "burst": 0.3})
