"""`POST /v1/embeddings` with the OpenAI SDK: routed like chat (weights, fallback), float and base64 passed
through, one row per call with usage and cost, and a model refused on the endpoint it does not declare."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.api.conftest import Client
from tests.integration.api.rows import row, rows
from tests.integration.core.conftest import models, route
from tests.support.upstream import count_tokens, embedding_of

TEXTS = ["the first text", "and a second one"]


def embedder(*routes: dict, **extra: object) -> dict:
    return models(*routes, model_id="e", endpoints=["embeddings"], **extra)


def test_float_and_base64_with_a_list_input(gateway_factory: GatewayFactory, upstreams, client: Client) -> None:
    a, _ = upstreams
    gw = gateway_factory(embedder(route(a)))
    c = client(gw.url)
    raw = c.embeddings.with_raw_response.create(model="e-alias", input=TEXTS, encoding_format="float", dimensions=3)
    floats = raw.parse()
    assert floats.model == "e" and [d.index for d in floats.data] == [0, 1]
    assert [d.embedding for d in floats.data] == [embedding_of(t, 3) for t in TEXTS]
    assert a.requests[-1].body == {
        "model": "upstream-a",
        "input": TEXTS,
        "encoding_format": "float",
        "dimensions": 3,
    }
    tokens = sum(map(count_tokens, TEXTS))
    assert floats.usage.prompt_tokens == tokens and floats.usage.total_tokens == tokens
    # the SDK asks for base64 when no format is given, and decodes it itself
    plain = c.embeddings.create(model="e", input=TEXTS)
    assert a.requests[-1].body["encoding_format"] == "base64"
    assert [d.embedding for d in plain.data] == [embedding_of(t, 4) for t in TEXTS]
    packed = c.embeddings.create(model="e", input="one", encoding_format="base64")
    vector = packed.data[0].embedding
    assert isinstance(vector, str) and list(struct.unpack("<4f", base64.b64decode(vector))) == embedding_of("one", 4)
    tokens_in = c.embeddings.create(model="e", input=[[1, 2, 3], [4, 5]], encoding_format="float")
    assert [d.embedding for d in tokens_in.data] == [embedding_of([1, 2, 3], 4), embedding_of([4, 5], 4)]
    assert tokens_in.usage.prompt_tokens == 5
    logged = row(gw, raw.headers["x-request-id"])
    assert logged["endpoint"] == "/v1/embeddings" and logged["model_id"] == "e" and logged["deployment"] == "a"
    assert logged["status_code"] == 200 and logged["prompt_tokens"] == tokens and logged["completion_tokens"] == 0
    assert float(logged["cost_usd"]) == pytest.approx(tokens * 1 / 1_000_000)  # models(): prompt at 1 USD / 1M
    assert [x["outcome"] for x in json.loads(logged["attempts"])] == ["ok"]
    assert len(rows(gw)) == 4


def test_falls_back_like_chat_and_reports_cost(gateway_factory: GatewayFactory, upstreams, client: Client) -> None:
    a, b = upstreams
    a.behaviour = {"status": 503}
    gw = gateway_factory(embedder(route(a, weight=1), route(b, weight=0)))
    raw = client(gw.url).embeddings.with_raw_response.create(model="e", input="hello there", encoding_format="float")
    answer = raw.parse()
    assert raw.headers["x-gateway-deployment"] == "b" and raw.headers["x-gateway-attempts"] == "2"
    assert answer.data[0].embedding == embedding_of("hello there", 4)
    assert answer.usage.model_extra["cost"] == pytest.approx(2 / 1_000_000)
    logged = row(gw, raw.headers["x-request-id"])
    assert logged["fallback_used"] and [x["outcome"] for x in json.loads(logged["attempts"])] == ["error", "ok"]


def test_each_model_serves_only_its_endpoints(gateway_factory: GatewayFactory, upstreams, client: Client) -> None:
    a, b = upstreams
    config = {"models": [*embedder(route(a))["models"], *models(route(b))["models"]]}
    gw = gateway_factory(config)
    c = client(gw.url)
    listed = {m["id"]: m["endpoints"] for m in httpx.get(f"{gw.url}/v1/models").json()["data"]}
    assert listed == {"e": ["embeddings"], "m": ["chat"]}
    with pytest.raises(openai.BadRequestError) as chat_to_embedder:
        c.chat.completions.create(model="e", messages=[{"role": "user", "content": "hi"}])
    assert chat_to_embedder.value.code == "unsupported_endpoint" and "/v1/embeddings" in chat_to_embedder.value.message
    with pytest.raises(openai.BadRequestError) as embed_with_chat:
        c.embeddings.create(model="m", input="hi")
    assert embed_with_chat.value.code == "unsupported_endpoint" and "embeddings" in embed_with_chat.value.message
    assert a.count == 0 and b.count == 0 and not [r for r in a.requests + b.requests if r.method == "POST"]
    with pytest.raises(openai.BadRequestError) as bad:
        c.embeddings.create(model="e", input=[])
    assert bad.value.param == "input"
    assert [r["status_code"] for r in rows(gw)] == [400, 400]  # the routed refusals are rows, the parse error not


def test_openrouter_surface_embeds_and_answers_errors_in_its_shape(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(embedder(route(a)))
    ok = httpx.post(f"{gw.url}/api/v1/embeddings", json={"model": "e", "input": "x", "encoding_format": "float"})
    assert ok.status_code == 200 and ok.json()["data"][0]["embedding"] == embedding_of("x", 4)
    missing = httpx.post(f"{gw.url}/api/v1/embeddings", json={"model": "nope", "input": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    assert [r["endpoint"] for r in rows(gw)] == ["/api/v1/embeddings", "/api/v1/embeddings"]
