"""The OpenAI chat-completions schema, shared by vLLM, DeepSeek, Llama API, Gemini's compat endpoint, OpenAI; and
its legacy `/completions`, for the kinds that serve it themselves (the same body rules, another path)."""

from __future__ import annotations

from typing import Any

import orjson

from adapters.base import Endpoint, ErrorFields, ProtocolError, StreamEvent, UpstreamRequest
from adapters.kinds import KindSpec
from adapters.reasoning import shape_reasoning
from adapters.redact import one_line

_DONE = b"[DONE]"
# vLLM's finish reason when it stopped a request itself (engine abort, preemption, shutdown): not an OpenAI value,
# and not an answer: the upstream failed, so the call fails over (before the first byte) or ends with the error chunk
ABORTED = 'the upstream aborted the generation (finish_reason "abort")'


class OpenAIAdapter:
    """Forwards the client's body untouched but for `model`, declared quirks, and always asking for usage."""

    streams = True

    def __init__(self, spec: KindSpec, path: str = "chat/completions") -> None:
        self.spec, self.path = spec, path

    def build(self, dep: Endpoint, payload: dict[str, Any], stream: bool) -> UpstreamRequest:
        body = {k: v for k, v in payload.items() if k not in self.spec.drop_params}
        body["model"] = dep.provider_model_id
        shape_reasoning(body, dep.reasoning or self.spec.reasoning, dep.thinking_switch)
        if stream:
            body["stream"] = True
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
        if dep.api_key:
            headers["Authorization"] = f"Bearer {dep.api_key}"
        headers.update(dep.headers)
        return UpstreamRequest("POST", f"{dep.base_url}/{self.path}", headers, orjson.dumps(body), stream)

    def parse_response(self, body: bytes, request: UpstreamRequest | None = None) -> dict[str, Any]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ProtocolError("upstream returned a body that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise ProtocolError("upstream response has no `choices` list")
        if _aborted(data):
            raise ProtocolError(ABORTED)
        if data.get("usage"):
            data["usage"] = normalize_usage(data["usage"])
        return data

    def parse_event(self, data: bytes) -> StreamEvent:
        if data.strip() == _DONE:
            return StreamEvent(done=True)
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProtocolError("upstream sent a stream event that is not JSON") from None
        if not isinstance(chunk, dict):
            raise ProtocolError("upstream sent a stream event that is not an object")
        if "error" in chunk and not chunk.get("choices"):
            return StreamEvent(error=_error_text(chunk["error"]))
        if chunk.get("object") == "error":
            return StreamEvent(error=one_line(chunk.get("message", "upstream error")))
        if _aborted(chunk):
            return StreamEvent(error=ABORTED)
        if chunk.get("usage"):
            chunk["usage"] = normalize_usage(chunk["usage"])
        return StreamEvent(chunk=chunk)

    def error_message(self, status: int, body: bytes) -> str:
        """The upstream's own error text, short and with anything key-like masked (upstreams echo keys)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return f"upstream returned HTTP {status}"
        if isinstance(data, dict):
            if "error" in data:
                return _error_text(data["error"])
            if "message" in data:
                return one_line(data["message"])
        return f"upstream returned HTTP {status}"

    def error_fields(self, body: bytes) -> ErrorFields:
        """The error object's `type`, `code` and `param` (at the top level too, as older vLLM sends them)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return ErrorFields()
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            error = data if isinstance(data, dict) and data.get("object") == "error" else {}
        return ErrorFields(_field(error, "type", 100), _field(error, "code", 100), _field(error, "param", 200))


def _field(error: dict[str, Any], name: str, limit: int) -> str | None:
    """A field of an error object, made safe to relay. OpenAI's schema makes them strings; vLLM's `code: 400` is
    relayed as "400", which is what the openai SDKs show a direct caller of it anyway."""
    value = error.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return one_line(value, limit) or None if isinstance(value, str) else None


def _aborted(data: dict[str, Any]) -> bool:
    choices = data.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") == "abort" for c in choices)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return one_line(error.get("message") or error.get("code") or "upstream error")
    return one_line(error)


def normalize_usage(usage: Any) -> dict[str, Any]:
    """OpenAI-shaped usage from any backend: DeepSeek cache-hit fields become prompt_tokens_details."""
    if not isinstance(usage, dict):
        return {}
    out = dict(usage)
    hit = _whole(usage.get("prompt_cache_hit_tokens"))
    if usage.get("prompt_cache_hit_tokens") is not None:
        details = dict(out.get("prompt_tokens_details") or {})
        details.setdefault("cached_tokens", hit)
        out["prompt_tokens_details"] = details
        miss = _whole(usage.get("prompt_cache_miss_tokens"))
        if _whole(out.get("prompt_tokens")) < hit + miss:
            out["prompt_tokens"] = hit + miss
    prompt = _whole(out.get("prompt_tokens"))
    completion = _whole(out.get("completion_tokens"))
    out["prompt_tokens"], out["completion_tokens"] = prompt, completion
    out["total_tokens"] = _whole(out.get("total_tokens")) or prompt + completion
    return out


def _whole(value: Any) -> int:
    """A count as the upstream sent it; a string, a list or a negative counts 0 rather than failing the call."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        return 0
    return int(value)
