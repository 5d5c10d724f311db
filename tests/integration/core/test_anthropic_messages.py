"""Anthropic's own SDK (`anthropic`, unmodified) against a running gateway's `/v1/messages`: whole and streamed
Messages with a tool round trip, and count_tokens, on a translating (OpenAI-compatible) deployment and on native
Messages deployments (`kind: anthropic`, vLLM's `messages: native`); errors in Anthropic's shape; one row a call."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from openai import OpenAI

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.anthropic_upstream import AnthropicUpstream

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
UPSTREAM_KEY = "sk-ant-upstream-secret-123456"


def client(url: str, key: str = "unused") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=20)


def rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("select * from api_logs order by id")]
    finally:
        conn.close()


@pytest.fixture
def native() -> Iterator[AnthropicUpstream]:
    with AnthropicUpstream.in_thread("claude", key=UPSTREAM_KEY) as up:
        yield up


def anthropic_route(up: AnthropicUpstream) -> dict[str, Any]:
    return {
        "kind": "anthropic",
        "name": up.name,
        "base_url": up.base_url,
        "api_key": UPSTREAM_KEY,
        "provider_model_id": "claude-upstream",
    }


def round_trip(sdk: anthropic.Anthropic, stream: bool) -> tuple[anthropic.types.Message, anthropic.types.Message]:
    """Ask with a tool, get a tool_use, answer it with a tool_result, get the final text."""

    def ask(messages: list[dict[str, Any]]) -> anthropic.types.Message:
        if not stream:
            return sdk.messages.create(model="m", max_tokens=64, messages=messages, tools=TOOLS)
        with sdk.messages.stream(model="m", max_tokens=64, messages=messages, tools=TOOLS) as events:
            return events.get_final_message()

    first = ask(ASK)
    call = next(b for b in first.content if b.type == "tool_use")
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21C"}
    then = [
        *ASK,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [result]},
    ]
    return first, ask(then)


def test_translated_create_and_stream(gateway_factory: GatewayFactory, upstreams, tmp_path: Path) -> None:
    a, _ = upstreams
    db = tmp_path / "calls.db"
    sdk = client(gateway_factory(models(route(a)), SQLITE_DB_PATH=str(db)).url)
    whole = sdk.messages.with_raw_response.create(model="m-alias", max_tokens=64, system="Be brief.", messages=ASK)
    message = whole.parse()
    assert message.type == "message" and message.model == "m" and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.startswith("[a]")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert whole.headers["x-gateway-deployment"] == "a"
    sent = a.requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."} and sent["max_tokens"] == 64
    with sdk.messages.stream(model="m", max_tokens=64, messages=ASK) as events:
        text = "".join(events.text_stream)
        final = events.get_final_message()
    assert text == message.content[0].text and final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    logged = rows(db)
    assert [(r["endpoint"], r["status_code"], bool(r["stream"])) for r in logged] == [
        ("/v1/messages", 200, False),
        ("/v1/messages", 200, True),
    ]
    assert all(r["total_tokens"] and r["deployment"] == "a" for r in logged)


@pytest.mark.parametrize("stream", [False, True])
def test_translated_tool_round_trip(gateway_factory: GatewayFactory, upstreams, stream: bool) -> None:
    a, _ = upstreams
    a.behaviour = {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_7"}}
    first, final = round_trip(client(gateway_factory(models(route(a))).url), stream)
    call = next(b for b in first.content if b.type == "tool_use")
    assert first.stop_reason == "tool_use" and (call.id, call.name, call.input) == (
        "call_7",
        "get_weather",
        {"city": "Paris"},
    )
    assert a.requests[0].body["tools"][0]["function"]["name"] == "get_weather"
    answered = a.requests[-1].body["messages"]
    assert answered[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert answered[-1] == {"role": "tool", "tool_call_id": "call_7", "content": "sunny, 21C"}
    assert final.stop_reason == "end_turn" and final.content[0].text.startswith("[a]")


def test_count_tokens_estimated_for_translating_deployments(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    sdk = client(gateway_factory(models(route(a))).url)
    counted = sdk.messages.with_raw_response.count_tokens(model="m", messages=ASK, tools=TOOLS)
    assert counted.headers["x-gateway-token-count"] == "estimate" and counted.parse().input_tokens > 7
    assert a.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_native_passthrough_with_tool_round_trip(
    gateway_factory: GatewayFactory, native, stream: bool, tmp_path
) -> None:
    db = tmp_path / "calls.db"
    sdk = client(gateway_factory(models(anthropic_route(native)), SQLITE_DB_PATH=str(db)).url)
    first, final = round_trip(sdk, stream)
    assert first.stop_reason == "tool_use" and first.model == "m"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    assert final.content[0].text == "[claude] result: sunny, 21C" and final.usage.output_tokens > 0
    seen = native.requests[-1]
    assert seen.path == "/v1/messages" and seen.headers["x-api-key"] == UPSTREAM_KEY
    assert seen.body["model"] == "claude-upstream" and seen.body["tools"] == TOOLS  # the body as the client wrote it
    assert seen.headers["anthropic-version"]
    logged = rows(db)
    assert [(r["endpoint"], r["status_code"], r["deployment"]) for r in logged] == [("/v1/messages", 200, "claude")] * 2
    assert all(r["prompt_tokens"] and r["completion_tokens"] for r in logged)


def test_native_forwards_beta_and_counts_upstream(gateway_factory: GatewayFactory, native, tmp_path) -> None:
    db = tmp_path / "calls.db"
    sdk = client(gateway_factory(models(anthropic_route(native)), SQLITE_DB_PATH=str(db)).url)
    sdk.beta.messages.create(
        model="m",
        max_tokens=16,
        messages=ASK,
        betas=["interleaved-thinking-2025-05-14"],
        extra_headers={"anthropic-version": "2099-01-01"},
    )
    assert native.requests[-1].headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert native.requests[-1].headers["anthropic-version"] == "2099-01-01"  # the client's, not ours
    counted = sdk.messages.with_raw_response.count_tokens(model="m", messages=ASK)
    assert counted.headers["x-gateway-token-count"] == "upstream"
    assert native.requests[-1].path == "/v1/messages/count_tokens"
    assert counted.parse().input_tokens == 7 + 7  # the fake's count: its tokens of the text, plus 7
    assert rows(db)[-1]["endpoint"] == "/v1/messages/count_tokens" and not rows(db)[-1]["cost_usd"]


def test_native_errors_come_back_as_the_upstream_wrote_them(gateway_factory: GatewayFactory, native) -> None:
    wording = "prompt is too long: 250000 tokens > 200000 maximum"
    native.behaviour = {"status": 400, "message": wording}
    # a threshold these calls cannot reach: an open circuit would (rightly) make the next call a 503
    sdk = client(gateway_factory(models(anthropic_route(native)), CIRCUIT_FAILURE_THRESHOLD="100").url)
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(model="m", max_tokens=16, messages=ASK)
    assert caught.value.body == {"type": "error", "error": {"type": "invalid_request_error", "message": wording}}
    with pytest.raises(anthropic.BadRequestError), sdk.messages.stream(model="m", max_tokens=16, messages=ASK) as s:
        s.get_final_message()
    native.behaviour = {"status": 529, "message": "Overloaded"}  # retryable: tried again, then answered as written
    for stream in (False, True):
        with pytest.raises(anthropic.APIStatusError) as overloaded:
            if stream:
                with sdk.messages.stream(model="m", max_tokens=16, messages=ASK) as s:
                    s.get_final_message()
            else:
                sdk.messages.create(model="m", max_tokens=16, messages=ASK)
        assert overloaded.value.status_code == 529
        assert overloaded.value.body == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        assert overloaded.value.response.headers["x-should-retry"] == "false"


def test_native_stream_error_after_commit_is_an_error_event(gateway_factory: GatewayFactory, native) -> None:
    native.behaviour = {"error_after": 2, "reply": "one two three four"}
    sdk = client(gateway_factory(models(anthropic_route(native))).url)
    with pytest.raises(anthropic.APIStatusError) as caught:
        with sdk.messages.stream(model="m", max_tokens=16, messages=ASK) as events:
            for _ in events:
                pass
    assert caught.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_vllm_messages_native_is_passed_through(gateway_factory: GatewayFactory, native) -> None:
    vllm = {
        "kind": "vllm",
        "name": "gpu",
        "base_url": f"{native.url}/v1",
        "api_key": UPSTREAM_KEY,
        "messages": "native",
    }
    sdk = client(gateway_factory(models(vllm)).url)
    with sdk.messages.stream(model="m", max_tokens=16, messages=ASK) as events:
        text = "".join(events.text_stream)
    assert text == "[claude] hello from the native upstream"
    assert (
        native.requests[-1].path == "/v1/messages"
        and native.requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    )


def test_errors_and_keys_in_anthropic_shape(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)), GATEWAY_API_KEYS="team:sk-client-key-1")
    with pytest.raises(anthropic.AuthenticationError) as refused:
        client(gw.url, "wrong").messages.create(model="m", max_tokens=16, messages=ASK)
    assert refused.value.body["type"] == "error" and refused.value.body["error"]["type"] == "authentication_error"
    sdk = client(gw.url, "sk-client-key-1")  # sent as x-api-key
    assert sdk.messages.create(model="m", max_tokens=16, messages=ASK).content[0].text.startswith("[a]")
    with pytest.raises(anthropic.NotFoundError) as unknown:
        sdk.messages.create(model="nope", max_tokens=16, messages=ASK)
    assert unknown.value.body["error"]["type"] == "not_found_error"
    bad = httpx.post(
        f"{gw.url}/v1/messages", json={"model": "m", "messages": ASK}, headers={"x-api-key": "sk-client-key-1"}
    )
    assert bad.status_code == 400 and bad.json()["error"] == {
        "type": "invalid_request_error",
        "message": "`max_tokens` is required and must be a whole number >= 1",
    }
    a.behaviour = {"status": 500}
    with pytest.raises(anthropic.InternalServerError) as failed:
        sdk.messages.create(model="m", max_tokens=16, messages=ASK)
    assert failed.value.status_code == 502 and failed.value.body["type"] == "error"


def test_chat_completions_to_an_anthropic_deployment(gateway_factory: GatewayFactory, native) -> None:
    sdk = OpenAI(base_url=f"{gateway_factory(models(anthropic_route(native))).url}/v1", api_key="unused", max_retries=0)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    whole = sdk.chat.completions.create(model="m", messages=chat, max_tokens=16)
    assert whole.choices[0].message.content == "[claude] hello from the native upstream"
    assert whole.choices[0].finish_reason == "stop" and whole.usage is not None and whole.usage.prompt_tokens > 0
    sent = native.requests[-1]
    assert sent.body["system"] == "Be brief." and sent.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    ]
    assert sent.body["max_tokens"] == 16 and sent.headers["x-api-key"] == UPSTREAM_KEY
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": TOOLS[0]["input_schema"]}}]
    stream = sdk.chat.completions.create(
        model="m", messages=chat, tools=tools, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0][0].function.name == "get_weather" and calls[0][0].index == 0
    assert "".join(t[0].function.arguments or "" for t in calls) == '{"city": "Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_translated_stream_falls_back_before_and_errors_after_commit(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    sdk = client(gateway_factory(models(route(a, weight=1.0), route(b, weight=0.0))).url)
    with sdk.messages.with_streaming_response.create(model="m", max_tokens=16, messages=ASK, stream=True) as raw:
        assert raw.headers["x-gateway-deployment"] == "b"
        text = "".join(
            e.delta.text for e in raw.parse() if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )
    assert text.startswith("[b]") and a.count == 1
    a.behaviour, b.behaviour = {"status": 500}, {"cut_after": 2}
    with pytest.raises(anthropic.APIStatusError) as caught:
        with sdk.messages.stream(model="m", max_tokens=16, messages=ASK) as events:
            for _ in events:
                pass
    assert "upstream stream interrupted" in str(caught.value)


def test_translated_max_tokens_clamped_and_session_logged(gateway_factory: GatewayFactory, upstreams, tmp_path) -> None:
    a, _ = upstreams
    db = tmp_path / "calls.db"
    sdk = client(gateway_factory(models(route(a), max_output_length=64), SQLITE_DB_PATH=str(db)).url)
    session = {"x-claude-code-session-id": "sess-42"}
    sdk.messages.create(model="m", max_tokens=32000, messages=ASK, extra_headers=session)
    assert a.requests[-1].body["max_tokens"] == 64
    assert rows(db)[-1]["session_id"] == "sess-42"
