"""A served call is on record whatever its upstream answered (issue 19 item 1): odd usage values or an answer
nested deeper than JSON can be written back used to cost the call its row (or the client a bare 500)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import GatewayFactory
from tests.integration.beacon.test_beacon_ledger import golem_config
from tests.integration.calllog.test_what_happened import rows
from tests.integration.core.conftest import models, route
from tests.support.beacon_upstreams import FakeGolem
from tests.support.sse import parse_sse
from tests.support.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "hi"}]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def health_counts(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/health").json()["call_log"]  # type: ignore[no-any-return]


def test_an_odd_usage_value_still_leaves_the_row_of_a_served_call(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, _ = upstreams
    a.behaviour = {"cached_tokens": "lots", "usage_in_last_chunk": True}
    gw = gateway_factory(models(route(a)))
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as resp:
        assert resp.status_code == 200
        streamed_id = resp.headers["x-request-id"]
        assert parse_sse(resp.iter_bytes()).done  # the client was served in full (and billed)
    assert streamed_id in rows(gw), "a served stream left no row"
    whole = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES}, timeout=30)
    assert whole.status_code == 200 and whole.json()["choices"][0]["message"]["content"].startswith("[a]")
    found = rows(gw)
    for request_id in (whole.headers["x-request-id"], streamed_id):
        row = found[request_id]
        assert row["status_code"] == 200 and row["completion_tokens"] > 0 and row["cached_tokens"] == 0
        assert "reduced" not in json.loads(row["metadata"])
    assert health_counts(gw.url)["rows_lost"] == 0


def test_an_answer_nested_too_deeply_to_relay_is_a_502_on_record(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """orjson reads 1024 levels but writes 254: the upstream's answer could be read but not written back."""
    a, _ = upstreams
    a.behaviour = {"cached_tokens": nested(300)}
    gw = gateway_factory(models(route(a)))
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES}, timeout=30)
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "upstream_error"
    assert "nested too deeply" in resp.json()["error"]["message"] and "Traceback" not in resp.text
    assert a.count == 1
    row = rows(gw)[resp.headers["x-request-id"]]
    assert row["status_code"] == 502 and row["deployment"] == "a" and row["prompt_tokens"] > 0
    assert health_counts(gw.url)["rows_lost"] == 0


def test_a_golem_receipt_too_deep_to_relay_is_a_502_on_record(gateway_factory: GatewayFactory) -> None:
    """A Golem node was called and answered; the chat surface relays its extras (the receipt), which could be read
    (1024 levels) but not written back (254): a bare 500 and no row. Beacon's own answer does not carry them."""
    with FakeGolem.in_thread("golem-us", "us-east", {"receipt_depth": 300}) as node:
        gw = gateway_factory(golem_config(node))
        chat = {"model": "llama3.2-1b", "messages": MESSAGES}
        resp = httpx.post(f"{gw.url}/v1/chat/completions", json=chat, timeout=30)
        beacon = httpx.post(f"{gw.url}/inference", json={"model": "llama3.2-1b", "prompt": "hi"}, timeout=30)
    assert resp.status_code == 502 and "nested too deeply" in resp.json()["error"]["message"]
    assert beacon.status_code == 200 and beacon.json()["success"] is True
    found = rows(gw)
    assert found[resp.headers["x-request-id"]]["status_code"] == 502
    assert found[beacon.json()["request_id"]]["status_code"] == 200
    assert len(node.requests) == 2 and health_counts(gw.url)["rows_lost"] == 0
