"""`local_first` through real sockets: local while there is room, spill to the cloud when the twins are full, back
with hysteresis; in-flight calls count between scrapes; health, circuits and max_concurrent compose with it."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.integration.routing.hybrid import MODEL, chat, eventually, hybrid_config, reasons, scraped, served_by
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


def routing_row(gw: object, name: str) -> dict[str, object]:
    body = httpx.get(f"{gw.url}/routing", timeout=5).json()  # type: ignore[attr-defined]
    model = body["models"][MODEL]
    row = next(r for r in model["deployments"] if r["deployment"] == name)
    return {"model": model, "row": row, "budget": body["local_first"]}


def test_spill_starts_when_local_is_full_and_stops_with_hysteresis(
    gateway_factory: GatewayFactory, twin: VllmTwin, cloud: FakeUpstream
) -> None:
    gw = gateway_factory(*hybrid_config([twin], [cloud], max_waiting=4, resume_below=0.5))
    scraped(gw, twin, waiting=0)
    assert served_by(gw.url) == "gpu-a"
    twin.override(waiting=9)
    scraped(gw, twin, waiting=9)
    assert served_by(gw.url) == "cloud"
    shown = routing_row(gw, "gpu-a")
    assert shown["model"]["spilling"] is True and shown["model"]["spilling_since"] is not None
    load = shown["row"]["load"]
    assert load["full"] is True and load["full_reason"] == "queue" and load["scraped"]["waiting"] == 9
    assert load["scrape_age_s"] is not None and load["scrape_age_s"] < 1
    # under the limit, but not under resume_below (2): still spilling (a scrape taken while a call was in flight
    # reads 1 lower once it finished, so 4, not 3)
    twin.override(waiting=4)
    scraped(gw, twin, waiting=4)
    assert served_by(gw.url) == "cloud"
    twin.override(waiting=2)
    scraped(gw, twin, waiting=2)
    assert served_by(gw.url) == "gpu-a"
    assert routing_row(gw, "gpu-a")["model"]["spilling"] is False
    assert reasons(gw) == ["local", "spill:queue", "spill:queue", "local"]
    page = httpx.get(f"{gw.url}/metrics", timeout=5).text
    assert f'gateway_spill_total{{model="{MODEL}",reason="queue"}} 2.0' in page


def test_a_full_kv_cache_spills_too(gateway_factory: GatewayFactory, twin: VllmTwin, cloud: FakeUpstream) -> None:
    gw = gateway_factory(*hybrid_config([twin], [cloud], max_kv_usage=0.9))
    twin.override(kv_usage=0.95)
    scraped(gw, twin, kv_usage=0.95)
    assert served_by(gw.url) == "cloud"
    assert reasons(gw) == ["spill:kv"]


def test_a_burst_between_two_scrapes_spills_once_the_queue_estimate_is_full(
    gateway_factory: GatewayFactory, cloud: FakeUpstream
) -> None:
    with VllmTwin.in_thread("gpu-a", TwinSpec(model="tiny", capacity=1)) as twin:
        # one scrape at start, then none for the rest of the test: only the in-flight count moves
        gw = gateway_factory(*hybrid_config([twin], [cloud], max_waiting=4, scrape_interval=30, scrape_timeout=1))
        scraped(gw, twin, waiting=0, running=0)
        twin.hold()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            held = [pool.submit(served_by, gw.url) for _ in range(5)]
            eventually(lambda: gw.services.executor.guards.in_flight(f"{MODEL}/gpu-a") == 5)
            assert [served_by(gw.url) for _ in range(3)] == ["cloud"] * 3  # in flight 5 = queue estimate 4 + 1
            twin.release()
            assert [f.result() for f in held] == ["gpu-a"] * 5


def test_a_local_deployment_at_max_concurrent_is_not_room(
    gateway_factory: GatewayFactory, twin: VllmTwin, cloud: FakeUpstream
) -> None:
    models, routing = hybrid_config([twin], [cloud])
    models["models"][0]["route"][0]["max_concurrent"] = 1
    gw = gateway_factory(models, routing)
    scraped(gw, twin, waiting=0)
    twin.hold()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(served_by, gw.url)
        eventually(lambda: gw.services.executor.guards.in_flight(f"{MODEL}/gpu-a") == 1)
        assert served_by(gw.url) == "cloud"
        twin.release()
        assert first.result() == "gpu-a"


def test_a_local_deployment_that_fails_falls_back_to_the_cloud(
    gateway_factory: GatewayFactory, twin: VllmTwin, cloud: FakeUpstream
) -> None:
    gw = gateway_factory(*hybrid_config([twin], [cloud]))
    scraped(gw, twin, waiting=0)
    twin.stop_sync()  # refused connections: the attempt fails, the scrape fails (unknown load, not zero)
    assert served_by(gw.url) == "cloud"
    assert reasons(gw) == ["fallback"]


def test_a_dead_metrics_endpoint_degrades_to_least_in_flight(
    gateway_factory: GatewayFactory, cloud: FakeUpstream
) -> None:
    with (
        VllmTwin.in_thread("gpu-a", TwinSpec(model="tiny")) as a,
        VllmTwin.in_thread("gpu-b", TwinSpec(model="tiny")) as b,
    ):
        a.metrics_mode = b.metrics_mode = "dead"
        models, routing = hybrid_config([a, b], [cloud], affinity={"enabled": False})
        gw = gateway_factory(models, routing)
        eventually(
            lambda: all((s := gw.services.deployments.scrape_state(f"{MODEL}/{t.name}")) and s.error for t in (a, b))
        )
        a.hold()
        b.hold()
        guards = gw.services.executor.guards

        def in_flight() -> int:
            return int(guards.in_flight(f"{MODEL}/gpu-a") + guards.in_flight(f"{MODEL}/gpu-b"))

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            calls = []
            for n in range(1, 5):
                calls.append(pool.submit(served_by, gw.url))
                eventually(lambda n=n: in_flight() == n)
            a.release()
            b.release()
            assert sorted(f.result() for f in calls) == ["gpu-a", "gpu-a", "gpu-b", "gpu-b"]
        assert cloud.count == 0
        assert chat(gw.url).status_code == 200
