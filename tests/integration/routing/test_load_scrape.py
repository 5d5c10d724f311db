"""The load scraper against a vLLM twin on a real socket: figures read for the deployment's model, combined with
the gateway's in-flight count, published as metrics; a dead, slow or garbled page is "unknown", never zero."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from routing.load import estimate
from tests.conftest import GatewayFactory
from tests.integration.routing.hybrid import MODEL, eventually, hybrid_config
from tests.support.vllm_twin import TwinSpec, VllmTwin


@pytest.fixture
def twin() -> Iterator[VllmTwin]:
    with VllmTwin.in_thread("gpu-a", TwinSpec(model="tiny-llama")) as t:
        yield t


def test_scraped_figures_reach_the_gateway_and_its_metrics(gateway_factory: GatewayFactory, twin: VllmTwin) -> None:
    gw = gateway_factory(*hybrid_config([twin], []))
    twin.override(running=2, waiting=3, kv_usage=0.4)
    state = eventually(
        lambda: (
            (s := gw.services.deployments.scrape_state(f"{MODEL}/gpu-a")) and s.sample and s.sample.waiting == 3 and s
        )
    )
    assert (state.sample.running, state.sample.kv_usage, state.error) == (2.0, 0.4, "")
    page = httpx.get(f"{gw.url}/metrics", timeout=5).text
    assert 'gateway_deployment_load{deployment="gpu-a",signal="waiting"} 3.0' in page
    assert 'gateway_deployment_load{deployment="gpu-a",signal="scrape_ok"} 1.0' in page


def test_calls_in_flight_since_the_scrape_add_to_the_scraped_queue(
    gateway_factory: GatewayFactory, twin: VllmTwin
) -> None:
    gw = gateway_factory(*hybrid_config([twin], []))
    key = f"{MODEL}/gpu-a"
    twin.override(running=4, waiting=1)
    state = eventually(
        lambda: (s := gw.services.deployments.scrape_state(key)) and s.sample and s.sample.waiting == 1 and s
    )
    load = estimate(state, state.sample.in_flight_at + 3, state.sample.at, 1.0)
    assert load.known and load.waiting == 4.0


@pytest.mark.parametrize(("mode", "error"), [("dead", "HTTP 500"), ("slow", "timeout"), ("garbage", "unreadable")])
def test_a_dead_slow_or_garbled_metrics_page_is_unknown(
    gateway_factory: GatewayFactory, twin: VllmTwin, mode: str, error: str
) -> None:
    gw = gateway_factory(*hybrid_config([twin], []))
    key = f"{MODEL}/gpu-a"
    eventually(lambda: (s := gw.services.deployments.scrape_state(key)) and s.sample)
    twin.metrics_mode, twin.metrics_delay = mode, 1.0
    state = eventually(lambda: (s := gw.services.deployments.scrape_state(key)) and s.error and s)
    assert error in state.error
    assert state.sample is not None  # the last good figures are kept for display ...
    assert not estimate(state, 0, state.sample.at, 1.0).known  # ... but never read as the current load


def test_a_page_without_the_deployments_model_is_an_error(gateway_factory: GatewayFactory) -> None:
    with VllmTwin.in_thread("gpu-b", TwinSpec(model="served-name")) as other:
        models, routing = hybrid_config([other], [])
        models["models"][0]["route"][0]["provider_model_id"] = "another-name"
        gw = gateway_factory(models, routing)
        state = eventually(lambda: gw.services.deployments.scrape_state(f"{MODEL}/gpu-b"))
        assert "no vllm load series for model 'another-name'" in state.error


def test_only_local_first_models_are_scraped(gateway_factory: GatewayFactory, twin: VllmTwin) -> None:
    models, _ = hybrid_config([twin], [])
    gw = gateway_factory(models, {"routing_strategy": "fixed"})
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=10).status_code == 200
    assert gw.services.deployments.scraper is None and twin.scrapes == 0
