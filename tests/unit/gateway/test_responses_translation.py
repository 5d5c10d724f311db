"""The pure Responses <-> chat translators: request to chat payload, chat answers and chunks to Responses."""

from __future__ import annotations

import itertools

import pytest

from adapters.kinds import kind_spec
from adapters.responses_api import NATIVE, ResponsesAdapter
from gateway.errors import APIError
from gateway.openai.responses.events import EventTranslator
from gateway.openai.responses.inbound import chat_payload
from gateway.openai.responses.outbound import Envelope, response_of


def ids() -> object:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


def test_request_items_tools_and_format_become_chat() -> None:
    body = {
        "model": "m",
        "instructions": "sys",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True}},
        "reasoning": {"effort": "low"},
        "max_output_tokens": 9,
        "top_p": 0.5,
    }
    payload = chat_payload(body, [{"type": "message", "role": "assistant", "content": "earlier"}])
    assert payload["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "assistant", "content": "earlier"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
    ]
    assert payload["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert payload["response_format"]["json_schema"]["name"] == "x"
    assert payload["reasoning_effort"] == "low" and payload["max_tokens"] == 9 and payload["top_p"] == 0.5


def test_unsupported_items_are_refused_naming_the_param() -> None:
    with pytest.raises(APIError) as refused:
        chat_payload({"model": "m", "input": [{"type": "computer_call"}]}, [])
    assert refused.value.status == 400 and refused.value.param == "input[0].type"
    with pytest.raises(APIError):
        chat_payload({"model": "m", "input": 3}, [])


def test_whole_completion_becomes_a_response_with_reasoning_and_calls() -> None:
    result = {
        "choices": [
            {
                "message": {
                    "content": "hello",
                    "reasoning": "thinking",
                    "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "completion_tokens_details": {"reasoning_tokens": 2}},
    }
    response = response_of(result, Envelope("resp_1", "m", 5), ids())  # type: ignore[arg-type]
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["output"][0]["content"] == [{"type": "reasoning_text", "text": "thinking"}]
    assert response["output"][2]["call_id"] == "call_1"
    assert response["usage"]["input_tokens"] == 3 and response["usage"]["output_tokens_details"] == {
        "reasoning_tokens": 2
    }
    assert response["status"] == "completed"
    cut = response_of({"choices": [{"message": {"content": "x"}, "finish_reason": "length"}]}, Envelope("r", "m", 1))
    assert cut["status"] == "incomplete" and cut["incomplete_details"] == {"reason": "max_output_tokens"}


def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_chunks_become_the_event_sequence() -> None:
    tr = EventTranslator(Envelope("resp_1", "m", 5), ids())  # type: ignore[arg-type]
    events = tr.opening()
    events += tr.feed(chunk({"reasoning": "hmm"}))
    events += tr.feed(chunk({"content": "He"}))
    events += tr.feed(chunk({"content": "llo"}))
    events += tr.feed(chunk({"tool_calls": [{"index": 0, "id": "call_9", "function": {"name": "f", "arguments": ""}}]}))
    events += tr.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}, "tool_calls"))
    events += tr.completed({"prompt_tokens": 1, "completion_tokens": 2})
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e.get("output_index") for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2]
    final = events[-1]["response"]
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert final["output"][2]["arguments"] == '{"a":1}' and final["usage"]["total_tokens"] == 3


def test_a_broken_stream_ends_with_response_failed() -> None:
    tr = EventTranslator(Envelope("resp_1", "m", 5))
    events = tr.opening() + tr.feed(chunk({"content": "x"})) + tr.failed("upstream_error", "cut")
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["message"] == "cut"


def test_native_adapter_keeps_events_and_maps_usage() -> None:
    spec = kind_spec("vllm")
    assert spec is not None
    adapter = ResponsesAdapter(spec)
    delta = adapter.parse_event(b'{"type": "response.output_text.delta", "sequence_number": 3, "delta": "hi"}')
    assert delta.chunk is not None and delta.chunk["choices"][0]["delta"] == {"content": "hi"}
    assert delta.chunk[NATIVE]["sequence_number"] == 3
    done = adapter.parse_event(
        b'{"type": "response.completed", "response": {"output": [], "usage": {"input_tokens": 2, "output_tokens": 5}}}'
    )
    assert done.chunk is not None and done.chunk["usage"]["completion_tokens"] == 5
    assert done.chunk["choices"][0]["finish_reason"] == "stop"
    failed = adapter.parse_event(b'{"type": "response.failed", "response": {"error": {"message": "boom"}}}')
    assert failed.error == "boom"
