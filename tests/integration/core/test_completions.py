"""`/v1/completions` through the gateway: passed through untouched to deployments that serve it (batches, logprobs,
echo, streams, usage, the row, fallback), translated onto chat for the others, and saying which it did."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.gateway import ThreadGateway
from tests.support.upstream import count_tokens

PROMPTS = ["Once upon a time", "The capital of France is"]


def client(gw: ThreadGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key="client-key", max_retries=0, timeout=20)


def native(up: Any, **extra: Any) -> dict[str, Any]:
    return route(up, kind="vllm", **extra)


def test_native_batch_with_logprobs_and_echo_passes_through(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(native(a)))
    with client(gw) as c:
        raw = c.completions.with_raw_response.create(
            model="m", prompt=PROMPTS, logprobs=2, echo=True, n=2, max_tokens=20, extra_body={"top_k": 5}
        )
    result = raw.parse()
    assert raw.headers["x-gateway-completions"] == "native" and raw.headers["x-gateway-deployment"] == "a"
    sent = a.completions[-1].body
    assert sent["prompt"] == PROMPTS and sent["logprobs"] == 2 and sent["echo"] is True and sent["n"] == 2
    assert sent["model"] == "upstream-a" and sent["top_k"] == 5 and "messages" not in sent
    assert a.count == 0  # no chat request: the deployment's own /v1/completions answered
    assert result.object == "text_completion" and result.id == raw.headers["x-request-id"] and result.model == "m"
    assert [c.index for c in result.choices] == [0, 1, 2, 3]
    for choice in result.choices:
        prompt = PROMPTS[choice.index // 2]
        assert choice.text.startswith(prompt + "[a]")
        assert choice.logprobs is not None and choice.logprobs.tokens is not None
        assert choice.logprobs.token_logprobs is not None and choice.logprobs.token_logprobs[0] is None  # echoed
        assert choice.logprobs.top_logprobs is not None and len(choice.logprobs.top_logprobs[-1]) == 2
    assert result.usage is not None and result.usage.prompt_tokens > 0
    logged = gw.row(result.id)
    assert logged["status_code"] == 200 and logged["total_tokens"] == result.usage.total_tokens
    assert json.loads(logged["prompt"]) == PROMPTS and logged["endpoint"] == "/v1/completions"


def test_native_stream_relays_text_chunks_and_usage(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(native(a)))
    with client(gw) as c:
        whole = c.completions.create(model="m", prompt="Hello").choices[0].text
        with c.completions.with_streaming_response.create(
            model="m", prompt="Hello", stream=True, stream_options={"include_usage": True}
        ) as response:
            assert response.headers["x-gateway-completions"] == "native"
            chunks = list(response.parse())
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == whole
    assert {ch.object for ch in chunks} == {"text_completion"} and len({ch.id for ch in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert a.completions[-1].body["stream_options"] == {"include_usage": True}
    logged = gw.row(chunks[0].id)
    assert logged["stream"] and logged["completion_tokens"] == chunks[-1].usage.completion_tokens
    assert logged["response"] == whole


def test_native_completions_fall_back_across_deployments(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    gw = gateway_factory(models(native(a, weight=1.0), native(b, weight=0.0)))
    with client(gw) as c:
        raw = c.completions.with_raw_response.create(model="m", prompt="Hi")
    assert raw.headers["x-gateway-deployment"] == "b" and raw.headers["x-gateway-attempts"] == "2"
    assert raw.parse().choices[0].text.startswith("[b]")
    assert len(a.completions) == 1 and len(b.completions) == 1


def test_translated_batch_answers_one_choice_per_prompt(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a, completions="translate")))
    with client(gw) as c:
        raw = c.completions.with_raw_response.create(model="m", prompt=PROMPTS, echo=True)
    result = raw.parse()
    assert raw.headers["x-gateway-completions"] == "translated"
    assert [r.body["messages"] for r in a.requests] == [[{"role": "user", "content": p}] for p in PROMPTS]
    assert all("prompt" not in r.body and "echo" not in r.body for r in a.requests)
    assert [c.index for c in result.choices] == [0, 1]
    assert [c.text.startswith(p + "[a]") for c, p in zip(result.choices, PROMPTS, strict=True)] == [True, True]
    assert result.usage is not None and result.usage.prompt_tokens == sum(map(count_tokens, PROMPTS))


def test_translated_batch_streams_each_prompts_choice(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a, completions="translate")))
    with client(gw) as c:
        chunks = list(
            c.completions.create(model="m", prompt=PROMPTS, stream=True, stream_options={"include_usage": True})
        )
    texts: dict[int, str] = {}
    for ch in chunks:
        for choice in ch.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert sorted(texts) == [0, 1] and all(t.startswith("[a]") for t in texts.values())
    usage = chunks[-1].usage
    assert usage is not None and a.count == 2
    assert usage.completion_tokens == sum(map(count_tokens, texts.values()))  # one usage chunk for both chat calls


def test_translation_refuses_what_chat_cannot_carry(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a, completions="translate")))
    with client(gw) as c, pytest.raises(openai.BadRequestError) as caught:
        c.completions.create(model="m", prompt="def f(", suffix="return 1")
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "suffix")
    assert a.count == 0


def test_a_bad_prompt_is_refused_naming_it(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(native(a)))
    resp = httpx.post(f"{gw.url}/v1/completions", json={"model": "m", "prompt": [1, "two"]})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "prompt"
    assert a.completions == []


def test_a_prompt_counts_against_the_deployments_tpm(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(native(a, tpm=200)))
    short = httpx.post(f"{gw.url}/v1/completions", json={"model": "m", "prompt": "Hi", "max_tokens": 10})
    long = httpx.post(f"{gw.url}/v1/completions", json={"model": "m", "prompt": ["word " * 200], "max_tokens": 10})
    assert short.status_code == 200 and long.status_code == 429
    assert len(a.completions) == 1
