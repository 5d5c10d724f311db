"""The pure translators between Anthropic Messages and OpenAI chat (adapters/messages_chat.py, chat_messages.py)."""

from __future__ import annotations

import pytest

from adapters.chat_messages import ChunkReader, Relayed, chat_from_message, messages_request
from adapters.messages_chat import EventWriter, TranslationError, chat_request, message_from_chat

TOOL = {"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}


def test_messages_request_onto_chat() -> None:
    body = {
        "model": "m",
        "max_tokens": 32,
        "system": [{"type": "text", "text": "Be brief."}],
        "stop_sequences": ["END"],
        "tools": [TOOL],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u-1"},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "s"},
                    {"type": "text", "text": "Calling"},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},
                    {"type": "text", "text": "thanks"},
                ],
            },
        ],
    }
    chat = chat_request(body)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Calling",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        {"role": "user", "content": "thanks"},
    ]
    assert chat["stop"] == ["END"] and chat["max_tokens"] == 32 and chat["user"] == "u-1"
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": {"type": "object"}, "description": "weather"},
        }
    ]


def test_unknown_block_is_refused_by_name() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}
    with pytest.raises(TranslationError, match=r"messages\[0\]\.content\[0\]\.type"):
        chat_request(body)


def test_chat_completion_as_message() -> None:
    result = {
        "choices": [
            {
                "message": {
                    "content": "Hi",
                    "reasoning": "think",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": '{"a": 1}'}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 3}},
    }
    message = message_from_chat(result, "id-1", "m")
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][2]["input"] == {"a": 1} and message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 7,
        "output_tokens": 4,
        "cache_read_input_tokens": 3,
        "cache_creation_input_tokens": 0,
    }


def test_chat_chunks_as_events() -> None:
    writer = EventWriter("id", "m")
    events = writer.start()
    for delta in ({"reasoning": "a"}, {"content": "Hi"}, {"content": "!"}):
        events += writer.chunk({"choices": [{"delta": delta}]})
    events += writer.chunk(
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]}}]}
    )
    events += writer.chunk(
        {
            "choices": [
                {
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
                    "finish_reason": "tool_calls",
                }
            ]
        }
    )
    events += writer.finish({"prompt_tokens": 5, "completion_tokens": 2})
    kinds = [(e["type"], e.get("index")) for e in events]
    assert kinds == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[-2]["delta"]["stop_reason"] == "tool_use" and events[-2]["usage"]["input_tokens"] == 5


def test_chat_request_onto_messages() -> None:
    payload = {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": '{"x": 1}'}}],
            },
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ],
        "stop": "END",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
    }
    body = messages_request(payload)
    assert body["system"] == "sys" and body["max_tokens"] == 4096 and body["stop_sequences"] == ["END"]
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "c", "name": "f", "input": {"x": 1}}],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "c", "content": "ok"}],
    }
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object"}}] and body["tool_choice"] == {
        "type": "auto"
    }


def test_message_and_events_as_chat_keep_the_upstream_objects() -> None:
    message = {
        "id": "msg",
        "type": "message",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 1},
    }
    chat = chat_from_message(message)
    assert isinstance(chat, Relayed) and chat.event is message
    assert chat["choices"][0]["finish_reason"] == "length" and chat["usage"]["prompt_tokens"] == 4
    reader = ChunkReader()
    stream = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    ]
    chunks = [reader.read(e) for e in stream]
    assert [c.event["type"] for c in chunks] == [e["type"] for e in stream]
    assert not any(c.get("usage") for c in chunks[:-1])  # nothing before the content commits the stream
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert chunks[3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
