"""Project Beacon's API on the gateway, driven the way seed 003's Go runner drives it, against fake Golem,
Modal and RunPod servers on loopback."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import GatewayFactory
from tests.integration.beacon.conftest import FakeMaps


def execute_via_router(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Seed 003's executeViaHybridRouter: POST /inference, decode the body whatever the status."""
    resp = httpx.post(
        f"{url}/inference", json={"temperature": 0.1, "max_tokens": 512, "cost_priority": True, **payload}, timeout=30
    )
    return resp.status_code, resp.json()


def fleet_config(fleet: dict[str, Any], **golem_us: Any) -> dict[str, Any]:
    return {
        "models": [
            {
                "id": "llama3.2-1b",
                "aliases": ["llama3.2:1b"],
                "route": [
                    {
                        "kind": "golem",
                        "name": "golem-us",
                        "base_url": fleet["golem-us"].base_url,
                        "region": "us-east",
                        "cost_per_second": 0.0001,
                        "max_concurrent": 5,
                        **golem_us,
                    },
                    {
                        "kind": "golem",
                        "name": "golem-eu",
                        "base_url": fleet["golem-eu"].base_url,
                        "region": "eu-west",
                        "cost_per_second": 0.0001,
                        "max_concurrent": 5,
                    },
                    {
                        "kind": "modal",
                        "name": "modal-us",
                        "base_url": fleet["modal-us"].base_url,
                        "region": "us-east",
                        "cost_per_second": 0.0003,
                        "max_concurrent": 10,
                    },
                    {
                        "kind": "runpod",
                        "name": "runpod-eu",
                        "base_url": fleet["runpod-eu"].base_url,
                        "region": "eu-west",
                        "api_key": "rp-secret-key",
                        "cost_per_second": 0.00025,
                        "max_concurrent": 8,
                    },
                ],
            }
        ]
    }


def test_region_preference_and_cost_ordering(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    gw = gateway_factory(fleet_config(fleet))
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi", "region_preference": "eu-west"})
    assert status == 200 and body["success"] is True
    assert body["provider_used"] == "golem-eu" and body["metadata"]["region"] == "eu-west"
    assert body["response"] == "[golem-eu] echo: hi"
    assert body["metadata"]["provider_type"] == "golem" and body["cost_estimate"] > 0
    status, body = execute_via_router(gw.url, {"model": "llama3.2:1b", "prompt": "hi", "region_preference": "us-east"})
    assert body["provider_used"] == "golem-us"  # cheapest in the region
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi", "region_preference": "ap-south"})
    assert status == 200 and body["provider_used"] in {"golem-us", "golem-eu"}  # not strict: falls back to others
    status, body = execute_via_router(
        gw.url, {"model": "llama3.2-1b", "prompt": "hi", "region_preference": "ap-south", "strict_region": True}
    )
    assert status == 503 and body["success"] is False and body["error_code"] == "NO_PROVIDER_AVAILABLE"
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi", "provider_preference": "runpod"})
    assert body["provider_used"] == "runpod-eu"
    runpod = fleet["runpod-eu"]
    assert (
        runpod.requests[-1].path.endswith("/runsync")
        and runpod.requests[-1].headers["authorization"] == "Bearer rp-secret-key"
    )
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi", "provider_preference": "modal"})
    assert body["provider_used"] == "modal-us" and fleet["modal-us"].requests[-1].body["region"] == "us-east"


def test_latency_priority_prefers_the_fastest_measured(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    fleet["golem-us"].behaviour = {"delay": 0.3}
    fleet["golem-eu"].behaviour = {"delay": 0.3}
    gw = gateway_factory(fleet_config(fleet))
    for provider in ("golem", "modal", "runpod"):  # measure each once
        execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "warm", "provider_preference": provider})
    _, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi", "cost_priority": False})
    assert body["provider_used"] in {"modal-us", "runpod-eu"}
    _, body = execute_via_router(
        gw.url, {"model": "llama3.2-1b", "prompt": "hi", "cost_priority": True, "region_preference": "us-east"}
    )
    assert body["provider_used"] == "golem-us"


def test_failover_when_the_preferred_provider_dies(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    gw = gateway_factory(fleet_config(fleet))
    fleet["golem-eu"].stop_sync()
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi", "region_preference": "eu-west"})
    assert status == 200 and body["provider_used"] == "runpod-eu"  # the other eu-west provider
    attempts = body["metadata"]["attempts"]
    assert attempts[0]["deployment"] == "golem-eu" and attempts[0]["outcome"] == "error"
    fleet["golem-us"].behaviour = {"fail": True}
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi", "region_preference": "us-east"})
    assert body["success"] and body["provider_used"] == "modal-us"


def test_every_provider_failing_gives_provider_error(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    for fake in fleet.values():
        fake.behaviour = {"status": 500}
    gw = gateway_factory(fleet_config(fleet))
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi"})
    assert status == 502 and body["success"] is False and body["error_code"] == "PROVIDER_ERROR"
    assert "rp-secret-key" not in json.dumps(body)
    status, body = execute_via_router(gw.url, {"model": "nope", "prompt": "hi"})
    assert status == 404 and body["error_code"] == "NO_PROVIDER_AVAILABLE"
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b"})
    assert status == 400 and body["error_code"] == "INVALID_REQUEST" and body["success"] is False


def test_capacity_limit_under_concurrent_load(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    fleet["golem-us"].behaviour = {"delay": 0.4}
    gw = gateway_factory(fleet_config(fleet, max_concurrent=2))
    payload = {"model": "llama3.2-1b", "prompt": "load", "region_preference": "us-east"}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: execute_via_router(gw.url, payload), range(8)))
    assert all(status == 200 and body["success"] for status, body in results)
    assert fleet["golem-us"].max_in_flight <= 2
    used = {body["provider_used"] for _, body in results}
    assert "golem-us" in used and len(used) > 1  # overflow went to the next provider


def test_health_and_providers_shapes(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    gw = gateway_factory(fleet_config(fleet), {"health_check": 0.2, "timeout": 1})
    health = httpx.get(f"{gw.url}/health").json()
    assert {"status", "timestamp", "version", "providers_total", "providers_healthy", "regions"} <= set(health)
    assert health["status"] == "healthy" and health["providers_total"] == 4
    assert health["regions"] == ["eu-west", "us-east"]
    fleet["modal-us"].behaviour = {"health_status": 503}
    deadline = time.monotonic() + 5
    while httpx.get(f"{gw.url}/health").json()["status"] != "degraded" and time.monotonic() < deadline:
        time.sleep(0.05)
    health = httpx.get(f"{gw.url}/health").json()
    assert health["status"] == "degraded" and health["providers_healthy"] == 3
    providers = httpx.get(f"{gw.url}/providers", params={"region": "eu-west"}).json()["providers"]
    assert {p["name"] for p in providers} == {"golem-eu", "runpod-eu"}
    row = providers[0]
    for field in (
        "name",
        "type",
        "region",
        "healthy",
        "cost_per_second",
        "avg_latency",
        "success_rate",
        "in_flight",
        "last_health_check",
    ):
        assert field in row
    everyone = {p["name"]: p for p in httpx.get(f"{gw.url}/providers").json()["providers"]}
    assert everyone["modal-us"]["healthy"] is False
    assert httpx.get(f"{gw.url}/ready").json()["status"] == "ok"


def test_cost_estimate_is_logged(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    fleet["golem-us"].behaviour = {"delay": 0.2}
    gw = gateway_factory(fleet_config(fleet))
    _, body = execute_via_router(
        gw.url, {"model": "llama3.2-1b", "prompt": "cost", "region_preference": "us-east", "trace_id": "trace-123"}
    )
    assert body["cost_estimate"] == pytest.approx(0.0001 * body["inference_time"], rel=0.2)
    assert body["trace_id"] == "trace-123"
    row = (
        sqlite3.connect(gw.settings.env["SQLITE_DB_PATH"])
        .execute("select cost_usd, endpoint, deployment from api_logs where request_id = ?", (body["request_id"],))
        .fetchone()
    )
    assert row[1] == "/inference" and row[2] == "golem-us"
    assert row[0] == body["cost_estimate"]  # one figure, priced once: the response and the row agree exactly


def test_weighted_70_30_strategy_shows_in_routing(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    routing = {
        "strategies": {"baseline-burst": {"kind": "weighted", "weights": {"golem": 70, "modal": 15, "runpod": 15}}},
        "model_strategies": {"llama3.2-1b": "baseline-burst"},
    }
    gw = gateway_factory(fleet_config(fleet), routing)
    rows = httpx.get(f"{gw.url}/routing").json()["models"]["llama3.2-1b"]["deployments"]
    by_provider: dict[str, float] = {}
    for row in rows:
        by_provider[row["provider"]] = by_provider.get(row["provider"], 0) + row["weight"]
    # a provider's weight is shared by its deployments: the two golem nodes get 70% between them
    assert by_provider == pytest.approx({"golem": 0.7, "modal": 0.15, "runpod": 0.15}, abs=1e-5)
    weights = {row["deployment"]: row["weight"] for row in rows}
    assert weights["golem-us"] == pytest.approx(0.35) and weights["golem-eu"] == pytest.approx(0.35)
    served: dict[str, int] = {}
    with httpx.Client(base_url=gw.url, timeout=20) as http:
        for _ in range(200):
            resp = http.post(
                "/v1/chat/completions", json={"model": "llama3.2-1b", "messages": [{"role": "user", "content": "x"}]}
            )
            kind = resp.headers["x-gateway-provider"]
            served[kind] = served.get(kind, 0) + 1
    # binomial sd = sqrt(.7 * .3 / 200) ~ 0.032; 4 sd either side of 70%
    assert 0.57 < served["golem"] / 200 < 0.83, served


def test_env_shortcut_creates_providers(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    env = {
        "GOLEM_PROVIDER_ENDPOINTS": f"{fleet['golem-us'].base_url},{fleet['golem-eu'].base_url}",
        "GOLEM_PROVIDER_REGIONS": "us-east,eu-west",
        "MODAL_API_BASE": fleet["modal-us"].base_url,
        "MODAL_REGION": "us-east",
        "BEACON_MODELS": "llama3.2-1b",
    }
    gw = gateway_factory({"models": [{"id": "other", "route": [{"kind": "mock"}]}]}, **env)
    names = {p["name"] for p in httpx.get(f"{gw.url}/providers").json()["providers"] if p["model"] == "llama3.2-1b"}
    assert names == {"golem-1", "golem-2", "modal"}
    _, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hey", "region_preference": "eu-west"})
    assert body["provider_used"] == "golem-2"


def test_websocket_streams_inference_and_health_events(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    gw = gateway_factory(fleet_config(fleet), {"health_check": 0.2, "timeout": 1})
    assert "WebSocket" in httpx.get(f"{gw.url}/ws").json()["message"]
    with connect(f"ws://127.0.0.1:{gw.port}/ws", open_timeout=5) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["type"] == "connection" and hello["status"] == "connected"
        ws.send("not json at all")
        assert json.loads(ws.recv(timeout=5)) == {
            **json.loads('{"type": "echo"}'),
            "data": "not json at all",
            "timestamp": pytest.approx(time.time(), abs=60),
        }
        ws.send(json.dumps({"type": "subscribe"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"
        ws.send(
            json.dumps(
                {"type": "inference", "model": "llama3.2-1b", "prompt": "stream me", "region_preference": "eu-west"}
            )
        )
        chunks, result, completed = [], None, None
        while result is None or completed is None:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "chunk":
                chunks.append(message["content"])
            elif message["type"] == "result":
                result = message
            elif message["type"] == "call_completed":
                completed = message
        assert result["success"] and "".join(chunks) == result["response"] == "[golem-eu] echo: stream me"
        assert completed["request_id"] == result["request_id"]
        chat = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "llama3.2-1b", "messages": [{"role": "user", "content": "via openai"}]},
        )
        while True:
            message = json.loads(ws.recv(timeout=5))
            if message["type"] == "call_completed":
                break
        assert message["request_id"] == chat.headers["x-request-id"]
        assert message["endpoint"] == "/v1/chat/completions" and message["success"] is True
        fleet["modal-us"].behaviour = {"health_status": 500}
        deadline = time.monotonic() + 5
        event = None
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=5))
            if message["type"] == "provider_health" and message["provider"] == "modal-us":
                event = message
                break
        assert event is not None and event["healthy"] is False


def test_maps_proxy(gateway_factory: GatewayFactory, maps: FakeMaps) -> None:
    config = {"models": [{"id": "m", "route": [{"kind": "mock"}]}]}
    gw = gateway_factory(config)
    off = httpx.get(f"{gw.url}/maps/api.js")
    assert off.status_code == 404 and "GOOGLE_MAPS_API_KEY" in off.json()["error"]["message"]
    gw2 = gateway_factory(config, GOOGLE_MAPS_API_KEY="maps-secret", MAPS_API_URL=maps.url)
    first = httpx.get(f"{gw2.url}/maps/api.js")
    second = httpx.get(f"{gw2.url}/maps/api.js")
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/javascript")
    assert first.headers["cache-control"] == "public, max-age=3600"
    assert second.content == first.content and len(maps.queries) == 1  # cached
    assert ("key", "maps-secret") in maps.queries[0] and "maps-secret" not in first.text
