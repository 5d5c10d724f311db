"""Cost priority compares each deployment's own price: two Golem nodes priced by the second under a model priced
by the token go cheap node first, and the call is billed at the price that ordered it (issue 17)."""

from __future__ import annotations

import concurrent.futures
import sqlite3
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.beacon.test_beacon_api import execute_via_router
from tests.support.beacon_upstreams import FakeGolem
from tests.support.upstream import FakeUpstream

CHEAP, DEAR = 0.0001, 0.0003
MODEL_PRICING = {"prompt": 0.5, "completion": 1.5}  # USD per 1M tokens, what most models.yaml files give


def two_nodes(cheap: FakeGolem, dear: FakeGolem, cheap_room: int = 5) -> dict[str, Any]:
    def node(fake: FakeGolem, cost: float, room: int) -> dict[str, Any]:
        return {"kind": "golem", "name": fake.name, "base_url": fake.base_url, "region": "us-east",
                "cost_per_second": cost, "max_concurrent": room}  # fmt: skip

    route = [node(dear, DEAR, 5), node(cheap, CHEAP, cheap_room)]  # the dear one first in the file
    return {"models": [{"id": "llama3.2-1b", "pricing": MODEL_PRICING, "route": route}]}


@pytest.fixture
def nodes() -> Any:
    with FakeGolem.in_thread("golem-cheap", "us-east") as cheap, FakeGolem.in_thread("golem-dear", "us-east") as dear:
        yield cheap, dear


def row_of(gw: Any, request_id: str) -> tuple[float, float, str]:
    with sqlite3.connect(gw.settings.env["SQLITE_DB_PATH"]) as db:
        found = db.execute(
            "select cost_usd, latency_ms, deployment from api_logs where request_id = ?", (request_id,)
        ).fetchone()
    assert found is not None
    return found


def test_the_cheap_node_is_picked_first_every_time(gateway_factory: GatewayFactory, nodes: Any) -> None:
    cheap, dear = nodes
    gw = gateway_factory(two_nodes(cheap, dear))
    used = [
        execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": f"call {i}"})[1]["provider_used"]
        for i in range(12)
    ]
    assert used == ["golem-cheap"] * 12 and dear.count == 0  # a tie would have drawn the dear one ~6 times
    table = httpx.get(f"{gw.url}/providers").json()["providers"]
    prices = {p["name"]: p["cost_per_second"] for p in table}
    assert prices == {"golem-cheap": CHEAP, "golem-dear": DEAR}


def test_the_dear_node_takes_only_what_the_cheap_one_has_no_room_for(
    gateway_factory: GatewayFactory, nodes: Any
) -> None:
    cheap, dear = nodes
    cheap.behaviour = dear.behaviour = {"delay": 0.6}
    gw = gateway_factory(two_nodes(cheap, dear, cheap_room=1))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        calls = [pool.submit(execute_via_router, gw.url, {"model": "llama3.2-1b", "prompt": f"c{i}"}) for i in range(3)]
        answers = [call.result()[1] for call in calls]
    assert all(a["success"] for a in answers)
    assert sorted(a["provider_used"] for a in answers) == ["golem-cheap", "golem-dear", "golem-dear"]
    cheap.behaviour = {}
    assert execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "room"})[1]["provider_used"] == "golem-cheap"


def test_the_row_bills_the_seconds_at_the_node_s_own_price(gateway_factory: GatewayFactory, nodes: Any) -> None:
    cheap, dear = nodes
    cheap.behaviour = {"delay": 0.3}
    gw = gateway_factory(two_nodes(cheap, dear))
    _, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "bill me"})
    cost, latency_ms, deployment = row_of(gw, body["request_id"])
    assert deployment == "golem-cheap" and cost == body["cost_estimate"]
    # seconds x the node's cost_per_second, not the model's per-token price (which would be ~1e-5 here)
    assert cost == pytest.approx(CHEAP * latency_ms / 1000, rel=0.1) and cost == pytest.approx(CHEAP * 0.3, rel=0.3)


def test_the_cost_strategy_and_a_per_token_deployment_follow_the_same_rule(gateway_factory: GatewayFactory) -> None:
    # 2 USD per 1M tokens of its own against 1e-4 USD a second, which is 1 USD per 1M tokens at 100 tokens/s
    with FakeUpstream.in_thread("tokens") as tokens, FakeUpstream.in_thread("seconds") as seconds:
        route = [
            {"kind": "openai", "name": "by-tokens", "base_url": tokens.base_url, "pricing": MODEL_PRICING},
            {"kind": "openai", "name": "by-seconds", "base_url": seconds.base_url, "cost_per_second": CHEAP},
        ]
        for deployment in route:
            deployment["api_key"] = "upstream-key"
        config = {
            "models": [{"id": "m", "pricing": {"prompt": 9, "completion": 9}, "strategy": "cost", "route": route}]
        }
        gw = gateway_factory(config)
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
        for _ in range(6):
            reply = client.chat.completions.with_raw_response.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.headers["x-gateway-deployment"] == "by-seconds"
        weights = httpx.get(f"{gw.url}/routing").json()["models"]["m"]["deployments"]
        assert {d["deployment"]: d["weight"] for d in weights} == {"by-tokens": 0.0, "by-seconds": 1.0}
        assert tokens.count == 0 and seconds.count == 6
