"""Rows have a size cap (issue 19 item 2): prompt and response keep their head and tail, the full length is
recorded and so is the cut; a stream's text is held bounded while it is relayed, not accumulated whole."""

from __future__ import annotations

import json

import httpx

from tests.conftest import GatewayFactory
from tests.integration.calllog.test_what_happened import rows
from tests.integration.core.conftest import models, route
from tests.support.sse import parse_sse
from tests.support.upstream import FakeUpstream

CAP = 1000


def test_a_huge_prompt_and_answer_leave_a_capped_row(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, _ = upstreams
    reply = "START " + "word " * 40_000 + "END"
    a.behaviour = {"reply": reply, "chunks": 1}
    gw = gateway_factory(models(route(a)), CALL_LOG_MAX_TEXT=str(CAP))
    prompt = "BEGIN " + "x" * 500_000 + " FINISH"
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": prompt}]},
        timeout=30,
    )
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == reply  # the client: all
    assert a.requests[-1].body["messages"][0]["content"] == prompt  # and the upstream got it all
    row = rows(gw)[resp.headers["x-request-id"]]
    meta = json.loads(row["metadata"])
    full_prompt = json.dumps([{"role": "user", "content": prompt}], separators=(",", ":"))
    assert meta["prompt_cut"] is True and meta["prompt_chars"] == len(full_prompt)
    assert row["prompt"].startswith('[{"role":"user","content":"BEGIN ') and row["prompt"].endswith(' FINISH"}]')
    assert f"{len(full_prompt) - CAP} characters cut" in row["prompt"] and len(row["prompt"]) < CAP + 100
    assert meta["response_cut"] is True and meta["response_chars"] == len(reply)
    assert (
        row["response"].startswith("START ") and row["response"].endswith(" END") and len(row["response"]) < CAP + 100
    )


def test_a_long_stream_is_held_and_stored_bounded(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, _ = upstreams
    reply = "first " + " ".join(f"w{i}" for i in range(20_000)) + " last"
    a.behaviour = {"reply": reply, "chunks": 2000}
    gw = gateway_factory(models(route(a)), CALL_LOG_MAX_TEXT=str(CAP))
    body = {"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as resp:
        request_id = resp.headers["x-request-id"]
        events = parse_sse(resp.iter_bytes())
    assert events.content() == reply and events.done
    row = rows(gw)[request_id]
    meta = json.loads(row["metadata"])
    assert meta["response_cut"] is True and meta["response_chars"] == len(reply)
    assert row["response"].startswith("first w0 w1") and row["response"].endswith("w19999 last")
    assert len(row["response"]) < CAP + 100
    assert row["completion_tokens"] > 0  # usage still settles from the upstream's own figures


def test_short_text_is_stored_whole_without_cut_marks(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))  # the default cap (65536)
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    row = rows(gw)[resp.headers["x-request-id"]]
    assert row["response"] == resp.json()["choices"][0]["message"]["content"]
    assert json.loads(row["prompt"]) == [{"role": "user", "content": "hi"}]
    assert "prompt_cut" not in json.loads(row["metadata"]) and "response_cut" not in json.loads(row["metadata"])
