"""Weighted split, fallback before the first byte, and what a client sees when a stream breaks after it."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.sse import parse_sse

MESSAGES = [{"role": "user", "content": "Tell me something."}]


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0, timeout=30)


def post_stream(url: str, **body: object):
    return httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        timeout=30,
        json={"model": "m", "messages": MESSAGES, "stream": True, **body},
    )


def test_split_60_40_within_statistical_tolerance(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    gw = gateway_factory(models(route(a, 0.6), route(b, 0.4)))
    n = 400
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        for _ in range(n):
            resp = http.post("/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "max_tokens": 4})
            assert resp.status_code == 200
    assert a.count + b.count == n
    # binomial sd = sqrt(400 * .6 * .4) ~ 9.8; 4 sd either side
    assert abs(a.count - 0.6 * n) <= 40, (a.count, b.count)


@pytest.mark.parametrize("failure", ["dead", "500", "429", "malformed", "hang"])
def test_fallback_before_first_byte(gateway_factory: GatewayFactory, upstreams, failure: str) -> None:
    a, b = upstreams
    timeouts = {"first_token": 0.5, "connect": 0.5}
    gw = gateway_factory(models(route(a, 1.0, timeouts=timeouts), route(b, 0.0)))
    behaviour = {
        "500": {"status": 500},
        "429": {"status": 429, "retry_after": "1"},
        "malformed": {"malformed": True},
        "hang": {"delay_headers": 3},
    }.get(failure)
    if failure == "dead":
        a.stop_sync()
    else:
        a.behaviour = behaviour or {}
    raw = client(gw.url).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.headers["x-gateway-deployment"] == "b"
    assert raw.headers["x-gateway-attempts"] == "2"
    assert raw.parse().choices[0].message.content.startswith("[b]")
    streamed = list(client(gw.url).chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).startswith("[b]")


def test_stream_stalled_before_first_token_falls_over(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"delay_first_chunk": 3}
    gw = gateway_factory(models(route(a, 1.0, timeouts={"first_token": 0.5}), route(b, 0.0)))
    with post_stream(gw.url) as resp:
        assert resp.status_code == 200
        assert resp.headers["x-gateway-deployment"] == "b"
        events = parse_sse(resp.iter_bytes())
    assert events.content().startswith("[b]") and events.done


def test_cut_after_first_byte_ends_with_one_error_chunk(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"cut_after": 2}
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)))
    with post_stream(gw.url) as resp:
        assert resp.status_code == 200
        events = parse_sse(resp.iter_bytes())
    chunks = events.chunks()
    assert events.done, "the stream must end with [DONE]"
    errors = [c for c in chunks if "error" in c]
    assert len(errors) == 1 and errors[0] is chunks[-1]
    assert errors[0]["choices"][0]["finish_reason"] == "error"
    assert "[b]" not in events.content(), "never the fallback's text glued to half an answer"
    assert b.count == 0
    with pytest.raises(openai.APIError):
        list(client(gw.url).chat.completions.create(model="m", messages=MESSAGES, stream=True))


def test_stall_mid_stream_ends_with_timeout_error_chunk(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"stall_after": 1, "stall_seconds": 5}
    gw = gateway_factory(models(route(a, timeouts={"idle": 0.5})))
    started = time.monotonic()
    with post_stream(gw.url) as resp:
        events = parse_sse(resp.iter_bytes())
    assert time.monotonic() - started < 4
    last = events.chunks()[-1]
    assert last["error"]["code"] == "upstream_timeout" and last["choices"][0]["finish_reason"] == "error"
    assert events.done


def test_malformed_event_mid_stream_is_an_error_not_a_clean_end(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"malformed": True, "malformed_after": 2}
    gw = gateway_factory(models(route(a)))
    with post_stream(gw.url) as resp:
        events = parse_sse(resp.iter_bytes())
    assert events.chunks()[-1]["choices"][0]["finish_reason"] == "error"


def test_upstream_without_done_and_usage_on_last_chunk_end_cleanly(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"no_done": True, "usage_in_last_chunk": True}
    gw = gateway_factory(models(route(a)))
    with post_stream(gw.url, stream_options={"include_usage": True}) as resp:
        events = parse_sse(resp.iter_bytes())
    chunks = events.chunks()
    assert events.done and not any("error" in c for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert all("usage" not in c for c in chunks[:-1])


def test_all_fail_before_first_byte_in_a_stream_gets_a_real_status(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    b.behaviour = {"status": 502}
    gw = gateway_factory(models(route(a), route(b)))
    with post_stream(gw.url) as resp:
        assert resp.status_code == 502
        resp.read()
        assert resp.json()["error"]["code"] == "upstream_error"


def test_timeouts_everywhere_give_504(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"delay_headers": 3}
    gw = gateway_factory(models(route(a, timeouts={"first_token": 0.3})))
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES}, timeout=10)
    assert resp.status_code == 504 and resp.json()["error"]["type"] == "server_error"


def test_keepalive_comments_while_waiting_never_data(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"delay_first_chunk": 1.6}
    gw = gateway_factory(models(route(a)), STREAM_KEEPALIVE_SECONDS="0.3")
    with post_stream(gw.url) as resp:
        assert resp.status_code == 200
        events = parse_sse(resp.iter_bytes())
    assert len(events.comments) >= 2 and all(c.strip() == "keep-alive" for c in events.comments)
    assert events.content().startswith("[a]") and events.done
    assert all(d == "[DONE]" or d.startswith("{") for d in events.data)


def test_client_disconnect_closes_the_upstream_request(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"chunks": 40, "chunk_delay": 0.1}
    gw = gateway_factory(models(route(a)))
    with post_stream(gw.url) as resp:
        for _ in resp.iter_bytes():
            break
    record = a.requests[-1]
    assert record.ended.wait(3), "upstream request still running after the client left"
    assert record.client_disconnected
