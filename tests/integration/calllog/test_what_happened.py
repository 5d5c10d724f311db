"""The client and the row say what happened (issue 19 items 3 and 4): vLLM's `abort`, disconnects, tokens."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import openai

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.gateway import ThreadGateway
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


def wait_row(gw: ThreadGateway, request_id: str, within: float = 5.0) -> dict[str, Any]:
    """A disconnect is booked after the client has gone: poll for its row."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        row = rows(gw).get(request_id)
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"no row for {request_id}")


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
