"""`/v1/responses` through real sockets with the official `openai` SDK: translated to chat and back, a function
tool round trip, previous_response_id across deployments, native passthrough, stored responses."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.responses_upstream import FakeResponsesUpstream
from tests.support.upstream import FakeUpstream

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


_OPEN: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(url: str) -> openai.OpenAI:
    made = openai.OpenAI(base_url=f"{url}/v1", api_key="client-key", max_retries=0, timeout=20)
    _OPEN.append(made)
    return made


def translating(up: FakeUpstream, **extra: Any) -> dict[str, Any]:
    return route(up, responses="translate", **extra)


def test_create_translated_non_stream(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(translating(a)))
    raw = client(gw.url).responses.with_raw_response.create(
        model="m", instructions="Be brief.", input="Say hello", max_output_tokens=50, temperature=0.2
    )
    response = raw.parse()
    assert raw.headers["x-gateway-deployment"] == "a"
    assert response.id.startswith("resp_") and response.status == "completed" and response.model == "m"
    assert response.output_text.startswith("[a]")
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    sent = a.requests[-1].body
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.2 and "input" not in sent
    rows = sqlite3.connect(gw.settings.storage.sqlite_path).execute("SELECT endpoint, status_code FROM api_logs")
    assert rows.fetchall() == [("/v1/responses", 200)]


def test_stream_translated_event_sequence(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(translating(a)))
    events = list(client(gw.url).responses.create(model="m", input="Say hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.startswith("[a]")
    done = events[-1].response
    assert done.output_text == text and done.usage is not None and done.usage.output_tokens > 0
    assert client(gw.url).responses.retrieve(done.id).output_text == text


@pytest.mark.parametrize("stream", [False, True])
def test_function_tool_round_trip(gateway_factory: GatewayFactory, stream: bool) -> None:
    with FakeUpstream.in_thread("a", {"tool_calls": True}) as a:
        gw = gateway_factory(models(translating(a)))
        c = client(gw.url)
        if stream:
            events = list(c.responses.create(model="m", input="Weather in Paris?", tools=[TOOL], stream=True))
            assert "response.function_call_arguments.delta" in [e.type for e in events]
            first = events[-1].response
        else:
            first = c.responses.create(model="m", input="Weather in Paris?", tools=[TOOL])
        call = next(item for item in first.output if item.type == "function_call")
        assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
        assert a.requests[-1].body["tools"][0] == {
            "type": "function",
            "function": {k: TOOL[k] for k in ("name", "description", "parameters")},
        }
        output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}
        second = c.responses.create(model="m", previous_response_id=first.id, input=[output], tools=[TOOL])
        assert second.output_text == "[a] the tool said: sunny, 21C"
        replayed = a.requests[-1].body["messages"]
        assert replayed[0] == {"role": "user", "content": "Weather in Paris?"}
        assert replayed[1]["tool_calls"][0]["id"] == call.call_id
        assert replayed[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}


def test_previous_response_id_survives_a_move_to_another_deployment(gateway_factory: GatewayFactory) -> None:
    with FakeUpstream.in_thread("gpu") as gpu, FakeUpstream.in_thread("cloud") as cloud:
        gw = gateway_factory(models(translating(gpu, weight=100), translating(cloud, weight=0.001)))
        c = client(gw.url)
        first = c.responses.create(model="m", input="My name is Ada.")
        assert first.output_text.startswith("[gpu]")
        gpu.stop_sync()  # the local GPU goes away: the second turn falls back to the cloud
        second = c.responses.with_raw_response.create(model="m", previous_response_id=first.id, input="My name?")
        assert second.headers["x-gateway-deployment"] == "cloud"
        assert second.parse().output_text.startswith("[cloud]")
        messages = cloud.requests[-1].body["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert messages[1]["content"] == first.output_text and messages[2]["content"] == "My name?"


def test_native_deployment_gets_the_request_untouched(gateway_factory: GatewayFactory) -> None:
    with FakeResponsesUpstream.in_thread("vllm") as up:
        gw = gateway_factory(models(route(up)))  # kind openai: native by default
        c = client(gw.url)
        response = c.responses.create(
            model="m", input="Hi", instructions="Be brief.", tools=[TOOL], extra_body={"top_k": 5}
        )
        assert response.id == "resp_vllm_1" and response.output_text == "[vllm] responses reply"
        sent = up.requests[-1]
        assert sent.path == "/v1/responses" and up.count == 0
        assert sent.body == {
            "model": "upstream-vllm",
            "input": "Hi",
            "instructions": "Be brief.",
            "tools": [TOOL],
            "top_k": 5,
        }
        events = list(c.responses.create(model="m", input="Hi again", previous_response_id=response.id, stream=True))
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "[vllm] responses reply"
        streamed = up.requests[-1].body
        assert streamed["stream"] is True and "previous_response_id" not in streamed
        assert streamed["input"][0] == {"type": "message", "role": "user", "content": "Hi"}
        assert streamed["input"][1]["role"] == "assistant" and "id" not in streamed["input"][1]
        assert streamed["input"][1]["content"][0]["text"] == "[vllm] responses reply"
        assert streamed["input"][2]["content"] == "Hi again"
        assert c.responses.retrieve(events[-1].response.id).output_text == "[vllm] responses reply"


def test_native_first_turn_then_translated_fallback(gateway_factory: GatewayFactory) -> None:
    with FakeResponsesUpstream.in_thread("gpu") as gpu, FakeUpstream.in_thread("cloud") as cloud:
        gw = gateway_factory(models(route(gpu, weight=100, kind="vllm", api_key=""), translating(cloud, weight=0.001)))
        c = client(gw.url)
        first = c.responses.create(model="m", input="My name is Ada.")
        assert first.id.startswith("resp_gpu_")
        gpu.stop_sync()
        second = c.responses.create(model="m", previous_response_id=first.id, input="My name?", stream=True)
        events = list(second)
        assert events[-1].type == "response.completed" and events[-1].response.output_text.startswith("[cloud]")
        messages = cloud.requests[-1].body["messages"]
        assert messages[1] == {"role": "assistant", "content": "[gpu] responses reply"}


def test_previous_response_id_after_a_restart_reads_the_database(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    first_gateway = gateway_factory(models(translating(a)))
    db = str(first_gateway.settings.storage.sqlite_path)
    first = client(first_gateway.url).responses.create(model="m", input="My name is Ada.")
    first_gateway.stop()  # its memory is gone: only the call-log database still knows the first turn
    second_gateway = gateway_factory(models(translating(a)), SQLITE_DB_PATH=db)
    second = client(second_gateway.url).responses.create(model="m", previous_response_id=first.id, input="And?")
    assert second.output_text.startswith("[a]")
    assert [m["content"] for m in a.requests[-1].body["messages"]] == ["My name is Ada.", first.output_text, "And?"]
    stored = sqlite3.connect(db).execute("SELECT id, model FROM responses ORDER BY created_at").fetchall()
    assert stored == [(first.id, "m"), (second.id, "m")]


def test_get_delete_input_items_and_404s(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(translating(a)))
    c = client(gw.url)
    made = c.responses.create(model="m", input=[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}])
    assert c.responses.retrieve(made.id).output_text == made.output_text
    items = c.responses.input_items.list(made.id, order="asc")
    assert [item.content[0].text for item in items.data] == ["one", "two"]  # type: ignore[union-attr]
    assert all(item.id for item in items.data) and items.first_id == items.data[0].id
    with pytest.raises(openai.NotFoundError) as missing:
        c.responses.retrieve("resp_nope")
    assert missing.value.body["code"] == "not_found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="m", input="x", previous_response_id="resp_nope")
    c.responses.delete(made.id)
    assert httpx.get(f"{gw.url}/v1/responses/{made.id}").status_code == 404
    gone = httpx.delete(f"{gw.url}/v1/responses/{made.id}")
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "invalid_request_error"


def test_stream_failure_before_first_event_falls_back_and_mid_stream_fails_loudly(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, b = upstreams
    a.behaviour = {"status": 503}
    gw = gateway_factory(models(translating(a, weight=100), translating(b, weight=0.001)))
    events = list(client(gw.url).responses.create(model="m", input="hi", stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.output_text.startswith("[b]")
    b.behaviour = {"cut_after": 2}
    a.behaviour = {"cut_after": 2}
    events = list(client(gw.url).responses.create(model="m", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None and "interrupted" in events[-1].response.error.message


def test_failure_after_keepalives_ends_with_response_failed(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"delay_headers": 1.6, "status": 503}  # past the 1 s keep-alive: the 200 has gone out
    gw = gateway_factory(models(translating(a)))
    with httpx.stream("POST", f"{gw.url}/v1/responses", json={"model": "m", "input": "hi", "stream": True}) as resp:
        assert resp.status_code == 200
        body = resp.read().decode()
    assert body.startswith(": keep-alive")
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["message"]
    assert "event: response.failed" in body


def test_native_stream_cut_mid_way_ends_with_response_failed(gateway_factory: GatewayFactory) -> None:
    with FakeResponsesUpstream.in_thread("vllm", {"cut_after": 2}) as up:
        gw = gateway_factory(models(route(up)))
        events = list(client(gw.url).responses.create(model="m", input="Hi", stream=True))
        assert [e.type for e in events][-3:] == [
            "response.output_text.delta",
            "response.output_text.delta",
            "response.failed",
        ]
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert "interrupted" in events[-1].response.error.message  # type: ignore[union-attr]
        assert events[-1].response.id == events[0].response.id == "resp_vllm_1"


def test_client_gone_mid_stream_closes_the_upstream_and_leaves_one_row(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, _ = upstreams
    a.behaviour = {"chunk_delay": 0.3, "chunks": 20}
    gw = gateway_factory(models(translating(a)))
    with httpx.stream("POST", f"{gw.url}/v1/responses", json={"model": "m", "input": "hi", "stream": True}) as resp:
        for line in resp.iter_lines():
            if "response.output_text.delta" in line:
                break  # the client goes away after its first delta
    assert asyncio.run(a.requests[-1].wait_ended(5.0)) and a.requests[-1].client_disconnected
    db = sqlite3.connect(gw.settings.storage.sqlite_path)
    deadline = time.monotonic() + 5
    while (
        not (rows := db.execute("SELECT endpoint, status_code FROM api_logs").fetchall())
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert rows == [("/v1/responses", 499)]
