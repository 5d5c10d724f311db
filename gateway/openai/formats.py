"""Response shapes: OpenAI chat completions and the legacy text completions, whole and as SSE chunks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import openai_error
from routing.errors import GatewayError

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(frozen=True, slots=True)
class Identity:
    """What every chunk of one response carries: our id, the public model, one creation time, the provider."""

    id: str
    model: str
    provider: str
    created: int


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def envelope(who: Identity, obj: str, **fields: Any) -> dict[str, Any]:
    """The fields every response object of one call shares, then `fields`."""
    return {"id": who.id, "object": obj, "created": who.created, "model": who.model, "provider": who.provider, **fields}


class ChatFormat:
    """`chat.completion` / `chat.completion.chunk`."""

    chunk_object = "chat.completion.chunk"

    def response(self, result: dict[str, Any], who: Identity, usage: dict[str, Any] | None) -> dict[str, Any]:
        result.update(envelope(who, "chat.completion"))
        if usage is not None:
            result["usage"] = usage
        return result

    def chunk(self, chunk: dict[str, Any], who: Identity) -> dict[str, Any] | None:
        if not chunk.get("choices"):
            return None  # usage-only chunk: re-emitted canonically at the end
        chunk.update(envelope(who, self.chunk_object))
        chunk.pop("usage", None)
        return chunk

    def usage_chunk(self, usage: dict[str, Any], who: Identity) -> dict[str, Any]:
        return envelope(who, self.chunk_object, choices=[], usage=usage)

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        """The JSON body of an error answered before the stream committed."""
        return openai_error(error)

    def error_chunk(self, who: Identity, code: str, message: str) -> dict[str, Any]:
        """OpenRouter's mid-stream error event: finish_reason "error" and an error object."""
        return envelope(
            who,
            self.chunk_object,
            error={"code": code, "message": message},
            choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        )


class TextFormat(ChatFormat):
    """Legacy `text_completion` objects, mapped from chat results."""

    chunk_object = "text_completion"

    def response(self, result: dict[str, Any], who: Identity, usage: dict[str, Any] | None) -> dict[str, Any]:
        choices = [_text_choice(c, (c.get("message") or {}).get("content")) for c in result.get("choices") or []]
        out = envelope(who, "text_completion", choices=choices)
        if usage is not None:
            out["usage"] = usage
        return out

    def chunk(self, chunk: dict[str, Any], who: Identity) -> dict[str, Any] | None:
        choices = chunk.get("choices")
        if not choices:
            return None
        return envelope(
            who, "text_completion", choices=[_text_choice(c, (c.get("delta") or {}).get("content")) for c in choices]
        )


def _text_choice(choice: dict[str, Any], text: Any) -> dict[str, Any]:
    return {
        "text": text or "",
        "index": choice.get("index", 0),
        "logprobs": None,
        "finish_reason": choice.get("finish_reason"),
    }


def identity(request_id: str, model: str, provider: str) -> Identity:
    return Identity(id=request_id, model=model, provider=provider, created=int(time.time()))
