"""Small differences between a direct call and one through the gateway: the stream's system_fingerprint, every
choice's text in the row, the max_tokens the upstream got in the row, and the model list's quantization."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.gateway import ThreadGateway

MESSAGES = [{"role": "user", "content": "Say something."}]


def client(gw: ThreadGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key="client-key", max_retries=0, timeout=20)


def test_every_streamed_chunk_keeps_the_system_fingerprint(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"system_fingerprint": "fp_a1"}
    gw = gateway_factory(models(route(a)))
    with client(gw) as c:
        chat = list(
            c.chat.completions.create(model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        )
        whole = c.chat.completions.create(model="m", messages=MESSAGES)
    assert whole.system_fingerprint == "fp_a1"
    assert chat[-1].usage is not None  # the usage chunk too, which the gateway writes itself
    assert [ch.system_fingerprint for ch in chat] == ["fp_a1"] * len(chat)


def test_a_fingerprint_named_once_is_carried_on(gateway_factory: GatewayFactory, upstreams) -> None:
    """Upstreams that name it on their first chunk only: the client sees it on every chunk, as OpenAI sends it."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    a.behaviour = {"system_fingerprint": "fp_a1", "fingerprint_on": "first"}
    with client(gw) as c:
        streamed = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert len(streamed) > 2 and {ch.system_fingerprint for ch in streamed} == {"fp_a1"}


def test_vllms_fingerprint_in_its_usage_chunk_reaches_the_client(gateway_factory: GatewayFactory, upstreams) -> None:
    """vLLM 0.32 names system_fingerprint only in the usage chunk, which the gateway rewrites: it must survive."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a, kind="vllm")))
    a.behaviour = {"system_fingerprint": "vllm-0.32.0-x", "fingerprint_on": "usage"}
    with client(gw) as c:
        streamed = list(
            c.chat.completions.create(model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        )
    assert streamed[-1].usage is not None and streamed[-1].system_fingerprint == "vllm-0.32.0-x"


def test_native_completion_chunks_keep_the_fingerprint(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a, kind="vllm")))
    a.behaviour = {"system_fingerprint": "fp_a1"}
    with client(gw) as c:
        streamed = list(c.completions.create(model="m", prompt="Hi", stream=True))
    assert len(streamed) > 2 and {ch.system_fingerprint for ch in streamed} == {"fp_a1"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_row_keeps_every_choices_text(gateway_factory: GatewayFactory, upstreams, stream: bool) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    body = {"model": "m", "messages": MESSAGES, "n": 2, "stream": stream}
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=20)
    assert resp.status_code == 200
    logged = json.loads(gw.row(resp.headers["x-request-id"])["response"])
    assert len(logged) == 2 and logged[0].startswith("[a]") and logged[1] == logged[0] + " #1"


def test_the_row_logs_the_max_tokens_sent_upstream(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a), max_output_length=100))
    with client(gw) as c:
        raw = c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, max_tokens=5000)
    assert a.requests[-1].body["max_tokens"] == 100
    assert gw.row(raw.headers["x-request-id"])["max_tokens"] == 100


def test_quantization_is_unknown_unless_declared(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    config = models(route(a))
    config["models"].append({"id": "q", "quantization": "fp8", "route": [route(a)]})
    gw = gateway_factory(config)
    listed = {m["id"]: m for m in httpx.get(f"{gw.url}/v1/models").json()["data"]}
    assert listed["m"]["quantization"] == "unknown" and listed["q"]["quantization"] == "fp8"
