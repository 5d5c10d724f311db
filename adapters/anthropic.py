"""Anthropic's Messages API as an upstream: `kind: anthropic`, and any deployment with `messages: native` (vLLM
serves `/v1/messages` itself) when a Messages client calls.

A call from the Messages surface arrives as a MessagesPayload: its chat translation (what other deployments are
sent) carrying the client's own Messages body, which a native deployment is sent unchanged but for `model`, with
the client's `anthropic-version` / `anthropic-beta`. A chat call arrives as a plain chat payload and is translated
(chat_messages.py). Either way answers come back as chat chunks that keep the upstream's own events (Relayed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from adapters.base import Endpoint, ErrorFields, ProtocolError, StreamEvent, UpstreamRequest
from adapters.chat_messages import ChunkReader, Relayed, chat_from_message, messages_request
from adapters.kinds import KindSpec
from adapters.redact import one_line

ANTHROPIC_VERSION = "2023-06-01"


class MessagesPayload(dict[str, Any]):
    """A Messages call: the chat translation as the dict, the client's Messages body and headers beside it."""

    messages: dict[str, Any]
    forwarded: dict[str, str]
    count_tokens: bool

    def __init__(
        self,
        chat: dict[str, Any],
        messages: dict[str, Any],
        forwarded: Mapping[str, str],
        count_tokens: bool = False,
    ) -> None:
        super().__init__(chat)
        self.messages, self.forwarded, self.count_tokens = messages, dict(forwarded), count_tokens


def messages_url(base_url: str, count_tokens: bool = False) -> str:
    """`{base_url}/v1/messages` as Anthropic's SDK builds it; a base URL ending in /v1 (vLLM's) is not doubled."""
    root = base_url.rstrip("/").removesuffix("/v1")
    return f"{root}/v1/messages/count_tokens" if count_tokens else f"{root}/v1/messages"


class AnthropicAdapter:
    """Builds Messages requests and reads Messages answers (as chat, with the upstream's objects kept)."""

    streams = True

    def __init__(self, spec: KindSpec) -> None:
        self.spec = spec

    def build(self, dep: Endpoint, payload: dict[str, Any], stream: bool) -> UpstreamRequest:
        native = payload if isinstance(payload, MessagesPayload) else None
        count = native is not None and native.count_tokens
        body = dict(native.messages) if native is not None else messages_request(payload)
        body["model"] = dep.provider_model_id
        if not count:
            body["stream"] = stream
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if native is not None:
            headers.update(native.forwarded)
        if dep.api_key:
            headers["x-api-key"] = dep.api_key
            if self.spec.schema != "anthropic":  # vLLM checks its --api-key as a bearer token
                headers["Authorization"] = f"Bearer {dep.api_key}"
        headers.update(dep.headers)
        return UpstreamRequest("POST", messages_url(dep.base_url, count), headers, orjson.dumps(body), stream)

    def parse_response(self, body: bytes, request: UpstreamRequest | None = None) -> dict[str, Any]:
        data = _object(body, "upstream returned a body that is not JSON")
        if "input_tokens" in data and "content" not in data:  # a count_tokens answer: counting generates nothing,
            usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}  # so it costs no tokens or USD
            return Relayed({"choices": [], "usage": usage}, data)
        if data.get("type") != "message" or not isinstance(data.get("content"), list):
            raise ProtocolError("upstream response is not a Message (no `content` list)")
        return chat_from_message(data)

    def event_parser(self) -> Callable[[bytes], StreamEvent]:
        """A parser for one stream (Anthropic's events carry state: block indices, usage in two halves)."""
        reader = ChunkReader()

        def parse(data: bytes) -> StreamEvent:
            event = _object(data, "upstream sent a stream event that is not JSON")
            if event.get("type") == "error":
                return StreamEvent(chunk=Relayed({"choices": []}, event), error=_error_text(event.get("error")))
            return StreamEvent(chunk=reader.read(event))

        return parse

    def parse_event(self, data: bytes) -> StreamEvent:
        return self.event_parser()(data)

    def error_message(self, status: int, body: bytes) -> str:
        """The upstream's own error message, as it wrote it (Claude Code's recovery reads the wording)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return f"upstream returned HTTP {status}"
        if isinstance(data, dict) and "error" in data:
            return _error_text(data["error"])
        return f"upstream returned HTTP {status}"

    def error_fields(self, body: bytes) -> ErrorFields:
        """Anthropic's error names its `type` (`invalid_request_error`...), no code or param."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return ErrorFields()
        error = data.get("error") if isinstance(data, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        return ErrorFields(type=kind[:100]) if isinstance(kind, str) and kind else ErrorFields()


def _object(data: bytes, problem: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProtocolError(problem) from None
    if not isinstance(parsed, dict):
        raise ProtocolError(problem.replace("not JSON", "not an object"))
    return parsed


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return one_line(error.get("message") or error.get("type") or "upstream error", limit=2000)
    return one_line(error, limit=2000)
