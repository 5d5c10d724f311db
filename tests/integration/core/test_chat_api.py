"""The OpenAI SDK against a running gateway: models, chat, streams, errors, and who answered."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.sse import parse_sse

MESSAGES = [{"role": "user", "content": "Say hello, please."}]


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="client-key", max_retries=0, timeout=20)


def test_models_lists_openai_and_openrouter_fields(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    listed = client(gw.url).models.list()
    assert [m.id for m in listed.data] == ["m"]
    raw = httpx.get(f"{gw.url}/v1/models").json()
    entry = raw["data"][0]
    assert raw["object"] == "list" and entry["object"] == "model" and isinstance(entry["created"], int)
    assert entry["pricing"]["prompt"] == "0.000001" and entry["pricing"]["completion"] == "0.000002"
    assert entry["architecture"]["modality"] == "text->text"
    assert entry["top_provider"]["context_length"] == entry["context_length"]
    assert httpx.get(f"{gw.url}/models").json() == raw


def test_chat_non_stream_routes_and_rewrites(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    raw = client(gw.url).chat.completions.with_raw_response.create(
        model="m-alias",
        messages=MESSAGES,
        temperature=0.3,
        seed=7,
        extra_body={"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}], "custom_field": 1},
    )
    completion = raw.parse()
    assert raw.headers["x-gateway-deployment"] == "a"
    assert completion.model == "m"
    assert completion.id == raw.headers["x-request-id"]
    assert completion.choices[0].message.content.startswith("[a]")
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert completion.usage.model_extra["cost"] > 0
    sent = a.requests[-1]
    assert sent.body["model"] == "upstream-a"
    assert sent.body["seed"] == 7 and sent.body["custom_field"] == 1 and sent.body["tools"][0]["type"] == "function"
    assert sent.headers["authorization"] == "Bearer sk-test-a-secret"


def test_stream_reassembles_exactly_with_stable_ids_and_usage(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    c = client(gw.url)
    whole = c.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
    stream = c.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole
    assert len({ch.id for ch in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert all(ch.usage is None for ch in chunks[:-1])
    assert a.requests[-1].body["stream_options"] == {"include_usage": True}


def test_stream_without_usage_request_has_no_usage_chunk_but_upstream_was_asked(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    with httpx.stream(
        "POST", f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True}
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["x-accel-buffering"] == "no"
        assert resp.headers["x-request-id"].startswith("gen-")
        events = parse_sse(resp.iter_bytes())
    assert events.done
    assert all("usage" not in chunk for chunk in events.chunks())
    assert a.requests[-1].body["stream_options"]["include_usage"] is True


def test_the_clients_other_stream_options_reach_the_upstream(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    options = {"include_usage": False, "continuous_usage_stats": True}  # vLLM's option, unknown to the gateway
    body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": options}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body) as resp:
        events = parse_sse(resp.iter_bytes())
    assert events.done and all("usage" not in chunk for chunk in events.chunks())  # the client did not ask
    assert a.requests[-1].body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    httpx.post(f"{gw.url}/v1/chat/completions", json={**body, "stream": False}, timeout=10)
    assert "stream_options" not in a.requests[-1].body  # not sent with a non-streamed call


def test_errors_are_openai_shaped_with_right_status(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)), MAX_BODY_BYTES="2000")
    c = client(gw.url)
    with pytest.raises(openai.NotFoundError) as not_found:
        c.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert not_found.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        c.chat.completions.create(model="m", messages=[])
    assert bad.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="m", messages=MESSAGES, temperature=5)
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}
    big = httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    assert httpx.get(f"{gw.url}/nope").status_code == 404
    assert httpx.get(f"{gw.url}/nope").json()["error"]["code"] == "not_found"


def test_all_deployments_failing_gives_502_without_secrets(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    b.behaviour = {"status": 503}
    gw = gateway_factory(models(route(a), route(b)))
    with pytest.raises(openai.InternalServerError) as info:
        client(gw.url).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 502
    text = info.value.response.text
    assert "sk-test" not in text and "Traceback" not in text
    # both deployments, then one backed-off retry: ROUTER_MAX_ATTEMPTS (3) bounds the total
    assert info.value.response.headers["x-gateway-attempts"] == "3"
    assert a.count + b.count == 3


def test_upstream_client_error_is_returned_not_retried(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"status": 400}
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)))
    with pytest.raises(openai.BadRequestError):
        client(gw.url).chat.completions.create(model="m", messages=MESSAGES)
    assert a.count == 1 and b.count == 0


def test_legacy_completions(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a, completions="translate")))
    result = client(gw.url).completions.create(model="m", prompt="Hello")
    assert result.object == "text_completion" and result.choices[0].text.startswith("[a]")
    assert a.requests[-1].body["messages"] == [{"role": "user", "content": "Hello"}]
    streamed = list(client(gw.url).completions.create(model="m", prompt="Hello", stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == result.choices[0].text


def test_mock_model_works_with_no_keys(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory({"models": [{"id": "mock", "route": [{"kind": "mock", "mock": {"completion_tokens": 12}}]}]})
    c = client(gw.url)
    result = c.chat.completions.create(model="mock", messages=MESSAGES)
    assert result.usage is not None and result.usage.completion_tokens == 12
    streamed = c.chat.completions.create(
        model="mock", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(streamed)
    assert (
        "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == result.choices[0].message.content
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12


def test_health_and_routing_report_real_state(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    disabled = {"kind": "deepseek", "name": "ds", "api_key": "${DEEPSEEK_KEY_FOR_TEST}"}
    gw = gateway_factory(models(route(a, 0.6), route(b, 0.4), disabled))
    health = httpx.get(f"{gw.url}/health")
    assert health.status_code == 200
    body = health.json()
    assert body["models"]["m"]["deployments_total"] == 3 and body["models"]["m"]["deployments_enabled"] == 2
    assert body["providers_total"] == 3 and body["providers_healthy"] == 2 and body["status"] == "degraded"
    assert body["disabled_deployments"][0]["deployment"] == "ds"
    assert "DEEPSEEK_KEY_FOR_TEST" in body["disabled_deployments"][0]["reason"]
    table = httpx.get(f"{gw.url}/routing").json()
    rows = {r["deployment"]: r for r in table["models"]["m"]["deployments"]}
    assert rows["a"]["weight"] == 0.6 and rows["a"]["percent"] == "60.0%" and rows["b"]["weight"] == 0.4
    assert rows["ds"]["enabled"] is False
    assert "sk-test" not in httpx.get(f"{gw.url}/routing").text


def test_health_is_503_when_nothing_can_serve(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        {
            "models": [
                {
                    "id": "x",
                    "route": [{"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "${UNSET_FOR_TEST}"}],
                }
            ]
        }
    )
    resp = httpx.get(f"{gw.url}/health")
    assert resp.status_code == 503 and resp.json()["status"] == "unhealthy" and resp.json()["reason"]
    assert httpx.get(f"{gw.url}/v1/models").json()["data"] == []


def test_hard_offload_hides_local_only_model(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    config = {
        "models": [
            {"id": "local-only", "route": [{"kind": "vllm", "base_url": a.base_url}]},
            {"id": "hybrid", "route": [{"kind": "vllm", "base_url": a.base_url}, route(b)]},
        ]
    }
    gw = gateway_factory(config, OFFLOAD="1", LOCAL_BASE_URL=a.base_url)
    assert [m["id"] for m in httpx.get(f"{gw.url}/v1/models").json()["data"]] == ["hybrid"]
    result = client(gw.url).chat.completions.create(model="hybrid", messages=MESSAGES)
    assert result.choices[0].message.content.startswith("[b]")
    assert a.count == 0


def test_concurrent_streams_are_independent(gateway_factory: GatewayFactory, upstreams) -> None:
    import concurrent.futures

    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    c = client(gw.url)

    def one(i: int) -> str:
        stream = c.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": f"n{i}"}],
            stream=True,
            extra_body={"x_test": {"a": {"reply": f"reply number {i}", "chunks": 3}}},
        )
        return "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    assert results == [f"reply number {i}" for i in range(16)]
