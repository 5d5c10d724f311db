from __future__ import annotations

import orjson
import pytest

from adapters.base import ErrorFields, ProtocolError
from adapters.kinds import KINDS
from adapters.openai_compat import OpenAIAdapter, normalize_usage
from adapters.sse import SSEDecoder
from adapters.tokens import count_tokens
from routing.config.schema import DeploymentConfig, MockOptions, Pricing
from routing.cost import call_cost
from routing.upstream.mock import reply_pieces, usage_for


def dep(kind: str = "openai", key: str | None = "sk-k") -> DeploymentConfig:
    return DeploymentConfig(
        name="d",
        model_id="pub",
        kind=kind,
        provider=kind,
        base_url="http://h/v1",
        provider_model_id="upstream-id",
        weight=1,
        api_key=key,
    )


def test_build_replaces_model_forwards_unknown_fields_and_asks_for_usage() -> None:
    adapter = OpenAIAdapter(KINDS["openai"])
    payload = {"model": "pub", "messages": [], "tools": [{"type": "function"}], "seed": 7, "x_custom": 1}
    req = adapter.build(dep(), payload, stream=True)
    body = orjson.loads(req.body)
    assert body["model"] == "upstream-id"
    assert body["tools"] == [{"type": "function"}] and body["seed"] == 7 and body["x_custom"] == 1
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert req.url == "http://h/v1/chat/completions"
    assert req.headers["Authorization"] == "Bearer sk-k"
    assert payload["model"] == "pub"  # the client's payload is not mutated


def test_gemini_key_in_header_not_url_and_quirks_dropped() -> None:
    adapter = OpenAIAdapter(KINDS["gemini"])
    req = adapter.build(dep("gemini", "g-key"), {"messages": [], "logit_bias": {"1": 2}}, stream=False)
    assert "g-key" not in req.url and req.headers["Authorization"] == "Bearer g-key"
    assert "logit_bias" not in orjson.loads(req.body)


def test_deepseek_cache_fields_normalised() -> None:
    usage = normalize_usage(
        {"prompt_tokens": 30, "completion_tokens": 5, "prompt_cache_hit_tokens": 20, "prompt_cache_miss_tokens": 10}
    )
    assert usage["prompt_tokens_details"]["cached_tokens"] == 20
    assert usage["total_tokens"] == 35


def test_parse_event_variants() -> None:
    adapter = OpenAIAdapter(KINDS["openai"])
    assert adapter.parse_event(b"[DONE]").done
    assert adapter.parse_event(b'{"error": {"message": "boom"}}').error == "boom"
    assert adapter.parse_event(b'{"choices": [], "usage": {"prompt_tokens": 1}}').chunk is not None
    with pytest.raises(ProtocolError):
        adapter.parse_event(b"{not json")
    with pytest.raises(ProtocolError):
        adapter.parse_response(b"<html>")


def test_sse_decoder_handles_comments_multiline_and_tail() -> None:
    d = SSEDecoder()
    assert d.feed(b": keep-alive\n") is None
    assert d.feed(b"data: a\n") is None
    assert d.feed(b"data: b\n") is None
    assert d.feed(b"\n") == b"a\nb"
    assert d.feed(b"data:{}\r\n") is None
    assert d.flush() == b"{}"


def test_mock_counts_are_honest() -> None:
    pieces, finish = reply_pieces("hello there, world", MockOptions(completion_tokens=10), None)
    assert len(pieces) == 10 and finish == "stop"
    assert count_tokens("".join(pieces)) == 10
    assert usage_for("hello there, world", pieces) == {"prompt_tokens": 4, "completion_tokens": 10, "total_tokens": 14}
    pieces, finish = reply_pieces("x", MockOptions(completion_tokens=10), 3)
    assert len(pieces) == 3 and finish == "length"


def test_cost_uses_cache_price_and_never_double_counts_reasoning() -> None:
    pricing = Pricing(prompt=1.0, completion=2.0, input_cache_reads=0.1)
    usage = {
        "prompt_tokens": 1_000_000,
        "completion_tokens": 1_000_000,
        "prompt_tokens_details": {"cached_tokens": 500_000},
        "completion_tokens_details": {"reasoning_tokens": 400_000},
    }
    assert call_cost(pricing, usage) == pytest.approx(0.5 + 0.05 + 2.0)
    assert call_cost(Pricing(), None, seconds=2.0, per_second=0.0003) == pytest.approx(0.0006)


def test_error_fields_take_strings_only_and_mask_them() -> None:
    adapter = OpenAIAdapter(KINDS["vllm"])
    error = {"message": "m", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}
    body = orjson.dumps({"error": error})
    assert adapter.error_fields(body) == ErrorFields("invalid_request_error", "context_length_exceeded", "messages")
    older_vllm = b'{"object": "error", "message": "m", "type": "BadRequestError", "param": null, "code": 400}'
    assert adapter.error_fields(older_vllm) == ErrorFields("BadRequestError", "400", None)
    leaky = b'{"error": {"param": "Bearer sk-live-abcdefghijklmnop", "code": "x"}}'
    assert adapter.error_fields(leaky).param == "Bearer ***"
    assert adapter.error_fields(b"<html>") == ErrorFields()
