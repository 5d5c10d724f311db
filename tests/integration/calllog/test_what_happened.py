"""The client and the row say what happened (issue 19 items 3 and 4): vLLM's `abort`, disconnects, tokens."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.beacon.test_beacon_ledger import golem_config
from tests.integration.core.conftest import models, route
from tests.support.beacon_upstreams import FakeGolem
from tests.support.gateway import ThreadGateway, write_config
from tests.support.served import GATEWAY_SERVE, isolated_env
from tests.support.sse import parse_sse
from tests.support.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Tell me a story"}]


def rows(gw: ThreadGateway) -> dict[str, dict[str, Any]]:
    path = gw.settings.storage.sqlite_path
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {r["request_id"]: dict(r) for r in conn.execute("select * from api_logs")}
    finally:
        conn.close()


def only_row(gw: ThreadGateway, within: float = 5.0) -> dict[str, Any]:
    """A disconnect is booked after the client has gone (and never saw the call's id): poll for the one row."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        found = list(rows(gw).values())
        if found:
            assert len(found) == 1
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no row")


def test_vllm_abort_after_the_first_byte_is_the_mid_stream_failure(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """vLLM stopped mid-stream ends with `finish_reason: "abort"`: it used to reach the client as a finish reason
    OpenAI never sends, and the row said 200."""
    a, b = upstreams
    a.behaviour = {"chunks": 6, "finish_reason": "abort"}
    gw = gateway_factory(models(route(a), route(b, weight=0)))
    with httpx.stream(
        "POST", f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True}, timeout=30
    ) as resp:
        assert resp.status_code == 200
        request_id = resp.headers["x-request-id"]
        events = parse_sse(resp.iter_bytes())
    chunks = events.chunks()
    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
    assert "abort" not in reasons and reasons[-1] == "error"
    assert "abort" in chunks[-1]["error"]["message"] and events.done
    assert events.content().startswith("[a]") and b.count == 0  # committed: no fallback text glued on
    row = rows(gw)[request_id]
    assert row["status_code"] == 502 and "abort" in row["error"]


def test_vllm_abort_before_any_byte_falls_back(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, b = upstreams
    a.behaviour = {"chunks": 1, "reply": "", "finish_reason": "abort"}
    gw = gateway_factory(models(route(a), route(b, weight=0)))
    sdk = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0, timeout=30)
    stream = sdk.chat.completions.create(model="m", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("[b]")
    whole = sdk.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert whole.headers["x-gateway-deployment"] == "b"
    assert whole.parse().choices[0].finish_reason == "stop"


def test_a_client_that_leaves_a_non_streamed_call_stops_it(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """The upstream used to run to the end and the row said 200 after 4 s."""
    a, _ = upstreams
    a.behaviour = {"delay_headers": 4}
    gw = gateway_factory(models(route(a)))
    with httpx.Client(base_url=gw.url, timeout=0.5) as http:
        try:
            http.post("/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
        except httpx.ReadTimeout:
            pass
        else:
            raise AssertionError("the call answered before the upstream did")
    record = a.requests[-1]
    assert record.ended.wait(2), "the upstream request still ran after the client left"
    assert record.client_disconnected
    row = only_row(gw)
    assert row["status_code"] == 499 and "disconnected" in row["error"]
    assert 400 < row["latency_ms"] < 2500
    (attempt,) = json.loads(row["attempts"])
    assert attempt["deployment"] == "a" and attempt["outcome"] == "cancelled" and attempt["duration_ms"] > 400
    assert json.loads(row["metadata"])["cancelled"] is True


def test_a_client_that_leaves_a_beacon_inference_stops_it(gateway_factory: GatewayFactory) -> None:
    with FakeGolem.in_thread("golem-us", "us-east", {"delay": 4}) as node:
        gw = gateway_factory(golem_config(node))
        with httpx.Client(base_url=gw.url, timeout=0.5) as http:
            try:
                http.post("/inference", json={"model": "llama3.2-1b", "prompt": "hello"})
            except httpx.ReadTimeout:
                pass
            else:
                raise AssertionError("the call answered before the upstream did")
        record = node.requests[-1]
        assert record.ended.wait(2), "the Golem request still ran after the client left"
        assert not record.finished
    row = only_row(gw)
    assert row["status_code"] == 499 and row["endpoint"] == "/inference" and row["latency_ms"] < 2500
    assert json.loads(row["attempts"])[0]["outcome"] == "cancelled"


def test_a_client_gone_after_20_chunks_leaves_the_tokens_it_was_sent(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """It used to be logged as 499 with 0 tokens (the upstream's usage comes only at the end)."""
    a, _ = upstreams
    a.behaviour = {"chunks": 60, "chunk_delay": 0.05}
    gw = gateway_factory(models(route(a)))
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    received = ""
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as resp:
        request_id = resp.headers["x-request-id"]
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                received += chunk["choices"][0]["delta"].get("content") or ""
                if len(received.split()) >= 20:
                    break
    assert a.requests[-1].ended.wait(3)
    row = only_row(gw)
    assert row["request_id"] == request_id and row["status_code"] == 499
    assert 20 <= row["completion_tokens"] <= 30  # the words relayed, counted by adapters.tokens' rule
    assert row["prompt_tokens"] > 0 and row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    assert row["cost_usd"] > 0  # priced like any tokens: the deployment spent them
    assert json.loads(row["metadata"]) == {"cancelled": True, "usage_estimated": True}


def test_under_gateway_serve_a_client_that_leaves_stops_its_call_without_a_watcher(
    serve: Any, tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """`gateway serve`'s own server protocol tells the call its client left (no watcher task per call): the
    upstream request is closed and the row says 499, as under plain uvicorn."""
    a, _ = upstreams
    a.behaviour = {"delay_headers": 4}
    env = isolated_env(tmp_path, CALL_LOG_SYNC="true", **write_config(tmp_path, models(route(a))))
    server = serve(GATEWAY_SERVE, env)
    with httpx.Client(base_url=server.url, timeout=0.5) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
    record = a.requests[-1]
    assert record.ended.wait(2) and record.client_disconnected  # the upstream request was closed at once
    deadline = time.monotonic() + 5
    found: list[tuple[int, str]] = []
    while not found and time.monotonic() < deadline:
        time.sleep(0.05)
        with sqlite3.connect(tmp_path / "calls.db") as db:
            try:
                found = db.execute("select status_code, error from api_logs").fetchall()
            except sqlite3.OperationalError:  # the table is made with the first row's batch
                found = []
    assert found and found[0][0] == 499 and "disconnected" in found[0][1]
