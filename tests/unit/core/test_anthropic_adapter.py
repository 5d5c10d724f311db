"""The anthropic adapter's requests: where they go, which headers, which body (adapters/anthropic.py)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from adapters.anthropic import AnthropicAdapter, MessagesPayload, messages_url
from adapters.kinds import KINDS


@dataclass(frozen=True)
class Dep:
    base_url: str = "https://api.anthropic.com"
    api_key: str | None = "sk-ant-1"
    provider_model_id: str = "claude-up"
    headers: tuple[tuple[str, str], ...] = ()
    region: str = ""


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("http://gpu:8000/v1", "http://gpu:8000/v1/messages"),
    ],
)
def test_messages_url(base: str, url: str) -> None:
    assert messages_url(base) == url and messages_url(base, count_tokens=True) == f"{url}/count_tokens"


def test_native_body_and_headers_are_the_clients() -> None:
    body = {
        "model": "m",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    forwarded = {"anthropic-version": "2099-01-01", "anthropic-beta": "b1"}
    request = AnthropicAdapter(KINDS["anthropic"]).build(
        Dep(), MessagesPayload({"messages": []}, body, forwarded), stream=True
    )
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert orjson.loads(request.body) == {**body, "model": "claude-up", "stream": True}
    assert request.headers["anthropic-version"] == "2099-01-01" and request.headers["anthropic-beta"] == "b1"
    assert request.headers["x-api-key"] == "sk-ant-1" and "Authorization" not in request.headers


def test_chat_payload_is_translated_and_vllm_also_gets_a_bearer() -> None:
    payload = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    request = AnthropicAdapter(KINDS["vllm"]).build(Dep(base_url="http://gpu:8000/v1"), payload, stream=False)
    sent = orjson.loads(request.body)
    assert sent == {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 5,
        "model": "claude-up",
        "stream": False,
    }
    assert (
        request.headers["anthropic-version"] == "2023-06-01" and request.headers["Authorization"] == "Bearer sk-ant-1"
    )


def test_count_tokens_request_and_answer() -> None:
    adapter = AnthropicAdapter(KINDS["anthropic"])
    payload = MessagesPayload({}, {"model": "m", "messages": []}, {}, count_tokens=True)
    request = adapter.build(Dep(), payload, stream=False)
    assert request.url.endswith("/v1/messages/count_tokens") and "stream" not in orjson.loads(request.body)
    counted = adapter.parse_response(b'{"input_tokens": 12}')
    assert counted["usage"]["total_tokens"] == 0 and counted.event == {"input_tokens": 12}  # type: ignore[attr-defined]


def test_stream_error_event_keeps_the_upstreams_own() -> None:
    parse = AnthropicAdapter(KINDS["anthropic"]).event_parser()
    event = parse(b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}')
    assert event.error == "Overloaded" and event.chunk is not None and event.chunk.event["type"] == "error"  # type: ignore[attr-defined]
