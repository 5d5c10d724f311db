"""Session and prefix affinity among local replicas (rendezvous hashing), giving way when the replica is full."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from routing.affinity import rendezvous
from tests.conftest import GatewayFactory
from tests.integration.routing.hybrid import MODEL, chat, hybrid_config, reasons, scraped, served_by
from tests.support.upstream import FakeUpstream
from tests.support.vllm_twin import TwinSpec, VllmTwin

SYSTEM = {"role": "system", "content": "You answer in one word. " * 100}  # 2,400 characters: a shared prefix


@pytest.fixture
def pool() -> Iterator[tuple[VllmTwin, VllmTwin, FakeUpstream]]:
    with (
        VllmTwin.in_thread("gpu-a", TwinSpec(model="tiny")) as a,
        VllmTwin.in_thread("gpu-b", TwinSpec(model="tiny")) as b,
        FakeUpstream.in_thread("cloud") as cloud,
    ):
        yield a, b, cloud


def home(key: str) -> str:
    """The replica rendezvous hashing prefers for an affinity key."""
    return ["gpu-a", "gpu-b"][rendezvous(key, [f"{MODEL}/gpu-a", f"{MODEL}/gpu-b"])[0]]


def test_a_session_stays_on_its_replica(
    gateway_factory: GatewayFactory, pool: tuple[VllmTwin, VllmTwin, FakeUpstream]
) -> None:
    a, b, cloud = pool
    gw = gateway_factory(*hybrid_config([a, b], [cloud]))
    sessions = [f"session-{i}" for i in range(8)]
    for sid in sessions:
        for header in ("X-Session-Id", "x-claude-code-session-id"):
            assert served_by(gw.url, {header: sid}) == home(f"s:{sid}")
    assert {home(f"s:{sid}") for sid in sessions} == {"gpu-a", "gpu-b"}  # sessions spread, each one sticks
    assert served_by(gw.url, user="alice") == home("u:alice")
    assert served_by(gw.url, prompt_cache_key="pk-1") == home("p:pk-1")
    assert set(reasons(gw)) == {"affinity"}
    page = httpx.get(f"{gw.url}/metrics", timeout=5).text
    assert 'gateway_affinity_total{result="hit"} 18.0' in page


def test_affinity_gives_way_when_its_replica_is_full(
    gateway_factory: GatewayFactory, pool: tuple[VllmTwin, VllmTwin, FakeUpstream]
) -> None:
    a, b, cloud = pool
    gw = gateway_factory(*hybrid_config([a, b], [cloud], max_waiting=4))
    sid = "sticky"
    preferred, other = (a, b) if home(f"s:{sid}") == "gpu-a" else (b, a)
    preferred.override(waiting=9)
    scraped(gw, preferred, waiting=9)
    assert served_by(gw.url, {"X-Session-Id": sid}) == other.name  # bounded load: the next in hash order
    other.override(waiting=9)
    scraped(gw, other, waiting=9)
    assert served_by(gw.url, {"X-Session-Id": sid}) == "cloud"  # both full: spill
    preferred.override()
    other.override()
    scraped(gw, preferred, waiting=0)
    scraped(gw, other, waiting=0)
    assert served_by(gw.url, {"X-Session-Id": sid}) == preferred.name  # and back home
    assert reasons(gw) == ["affinity", "spill:queue", "affinity"]
    assert 'gateway_affinity_total{result="overflow"} 1.0' in httpx.get(f"{gw.url}/metrics", timeout=5).text


def test_a_shared_prompt_prefix_meets_the_prefix_cache_on_one_replica(
    gateway_factory: GatewayFactory, pool: tuple[VllmTwin, VllmTwin, FakeUpstream]
) -> None:
    a, b, cloud = pool
    gw = gateway_factory(*hybrid_config([a, b], [cloud]))
    first = chat(gw.url, messages=[SYSTEM, {"role": "user", "content": "Ping"}])
    again = chat(gw.url, messages=[SYSTEM, {"role": "user", "content": "Pong"}])
    assert first.headers["x-gateway-deployment"] == again.headers["x-gateway-deployment"]
    assert again.json()["usage"]["prompt_tokens_details"]["cached_tokens"] > 0  # the twin's prefix cache hit


def test_affinity_can_be_turned_off(
    gateway_factory: GatewayFactory, pool: tuple[VllmTwin, VllmTwin, FakeUpstream]
) -> None:
    a, b, cloud = pool
    gw = gateway_factory(*hybrid_config([a, b], [cloud], affinity={"enabled": False}))
    served_by(gw.url, {"X-Session-Id": "s"})
    assert reasons(gw) == ["local"]
