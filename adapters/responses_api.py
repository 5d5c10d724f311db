"""The OpenAI Responses schema (`{base_url}/responses`), for deployments that serve it natively (OpenAI, vLLM).

The client's Responses body is passed through untouched but for `model`; what comes back is kept whole under
`native` (the response object, or each stream event) beside a chat-shaped view of it (text, tool calls, finish,
usage), which is all the executor and the call log read.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.base import Endpoint, ProtocolError, StreamEvent, UpstreamRequest
from adapters.openai_compat import OpenAIAdapter
from adapters.redact import one_line

NATIVE = "native"  # where a parsed result or chunk keeps the upstream's own object
_FAILED = ("response.failed", "error")


def chat_usage(usage: Any) -> dict[str, Any]:
    """Responses usage (input/output tokens) in chat terms (prompt/completion tokens)."""
    if not isinstance(usage, dict):
        return {}
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _finish(response: dict[str, Any]) -> str:
    if response.get("status") == "incomplete":
        return "length"
    if any(isinstance(i, dict) and i.get("type") == "function_call" for i in response.get("output") or ()):
        return "tool_calls"
    return "stop"


def _text(response: dict[str, Any]) -> str:
    return "".join(
        str(part.get("text") or "")
        for item in response.get("output") or ()
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, dict) and part.get("type") == "output_text"
    )


class ResponsesAdapter(OpenAIAdapter):
    """`POST {base_url}/responses`, the body as the client sent it (its `model` set to the upstream's)."""

    def build(self, dep: Endpoint, payload: dict[str, Any], stream: bool) -> UpstreamRequest:
        body = dict(payload)
        body["model"] = dep.provider_model_id
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
        if dep.api_key:
            headers["Authorization"] = f"Bearer {dep.api_key}"
        headers.update(dep.headers)
        return UpstreamRequest("POST", f"{dep.base_url}/responses", headers, orjson.dumps(body), stream)

    def parse_response(self, body: bytes, request: UpstreamRequest | None = None) -> dict[str, Any]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ProtocolError("upstream returned a body that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("output"), list):
            raise ProtocolError("upstream response has no `output` list")
        message = {"role": "assistant", "content": _text(data)}
        choice = {"index": 0, "message": message, "finish_reason": _finish(data)}
        return {"choices": [choice], "usage": chat_usage(data.get("usage")) or None, NATIVE: data}

    def parse_event(self, data: bytes) -> StreamEvent:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProtocolError("upstream sent a stream event that is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ProtocolError("upstream sent a stream event without a `type`")
        kind = event["type"]
        if kind in _FAILED:
            error = event.get("error") or (event.get("response") or {}).get("error") or event
            return StreamEvent(error=self.error_text(error))
        delta: dict[str, Any] = {}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
        chunk: dict[str, Any] = {"choices": [choice], NATIVE: event}
        if kind == "response.output_text.delta":
            delta["content"] = str(event.get("delta") or "")
        elif kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            delta["reasoning_content"] = str(event.get("delta") or "")
        elif kind == "response.output_item.added" and (event.get("item") or {}).get("type") == "function_call":
            item = event["item"]
            function = {"name": item.get("name") or "", "arguments": ""}
            delta["tool_calls"] = [{"index": 0, "id": item.get("call_id"), "function": function}]
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            choice["finish_reason"] = _finish(response)
            if usage := chat_usage(response.get("usage")):
                chunk["usage"] = usage
        return StreamEvent(chunk=chunk)

    @staticmethod
    def error_text(error: Any) -> str:
        if isinstance(error, dict):
            return one_line(error.get("message") or error.get("code") or "upstream response failed")
        return one_line(error)
