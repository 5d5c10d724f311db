"""X-Priority orders who spills; the spill budget stops low-priority spill (it waits for local room up to
ROUTER_QUEUE_TIMEOUT), keeps normal calls local and lets high-priority ones pass; its use is visible."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.integration.routing.hybrid import chat, hybrid_config, reasons, scraped, served_by
from tests.support.upstream import FakeUpstream
from tests.support.vllm_twin import TwinSpec, VllmTwin


@pytest.fixture
def twin() -> Iterator[VllmTwin]:
    with VllmTwin.in_thread("gpu-a", TwinSpec(model="tiny")) as t:
        yield t


@pytest.fixture
def cloud() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread("cloud") as c:
        yield c


def by_priority(url: str) -> list[str]:
    return [served_by(url, {"X-Priority": p}) for p in ("low", "normal", "high")]


def test_low_priority_spills_first_and_high_priority_stays_local_longest(
    gateway_factory: GatewayFactory, twin: VllmTwin, cloud: FakeUpstream
) -> None:
    gw = gateway_factory(*hybrid_config([twin], [cloud], max_waiting=4))
    # a scrape taken while a call was in flight reads 1 lower once it finished: the figures keep a margin of 1
    twin.override(waiting=4)  # over half the limit: full for low priority only
    scraped(gw, twin, waiting=4)
    assert by_priority(gw.url) == ["cloud", "gpu-a", "gpu-a"]
    twin.override(waiting=7)  # over the limit, under twice it: full for all but high priority
    scraped(gw, twin, waiting=7)
    assert by_priority(gw.url) == ["cloud", "cloud", "gpu-a"]
    twin.override(waiting=12)
    scraped(gw, twin, waiting=12)
    assert by_priority(gw.url) == ["cloud", "cloud", "cloud"]
    assert served_by(gw.url, {"X-Priority": "urgent"}) == "cloud"  # an unknown priority is normal


def test_the_spill_budget_stops_low_priority_spill(
    gateway_factory: GatewayFactory, twin: VllmTwin, cloud: FakeUpstream
) -> None:
    # the cloud charges 1000 USD per 1M tokens: one call of ~15 tokens spends the whole 0.001 USD budget
    gw = gateway_factory(*hybrid_config([twin], [cloud], spill_budget_usd_per_hour=0.001), ROUTER_QUEUE_TIMEOUT="0.3")
    twin.override(waiting=20)  # full for every priority, with a margin (see above)
    scraped(gw, twin, waiting=20)
    assert served_by(gw.url, {"X-Priority": "low"}) == "cloud"
    budget = httpx.get(f"{gw.url}/routing", timeout=5).json()["local_first"]
    assert budget["spill_budget_usd_per_hour"] == 0.001 and budget["spill_budget_used"] >= 1
    began = time.monotonic()
    refused = chat(gw.url, {"X-Priority": "low"})
    assert refused.status_code == 503 and "spill budget is spent" in refused.text
    assert time.monotonic() - began >= 0.3
    assert served_by(gw.url) == "gpu-a"  # normal: over budget it queues at the local engine
    assert served_by(gw.url, {"X-Priority": "high"}) == "cloud"  # high: may spill past the budget
    assert reasons(gw) == ["spill:queue", "None", "local", "spill:queue"]  # the refused call was never routed
    page = httpx.get(f"{gw.url}/metrics", timeout=5).text
    assert "gateway_spill_budget_used_ratio" in page and "gateway_spill_cost_usd_total" in page


def test_a_held_low_priority_call_takes_local_room_when_it_frees(
    gateway_factory: GatewayFactory, twin: VllmTwin, cloud: FakeUpstream
) -> None:
    gw = gateway_factory(*hybrid_config([twin], [cloud], spill_budget_usd_per_hour=0), ROUTER_QUEUE_TIMEOUT="10")
    twin.override(waiting=9)
    scraped(gw, twin, waiting=9)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(served_by, gw.url, {"X-Priority": "low"})
        time.sleep(0.1)
        assert not held.done()
        twin.override()
        assert held.result(timeout=5) == "gpu-a"
    assert cloud.count == 0
