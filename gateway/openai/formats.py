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

    object = "chat.completion"
    chunk_object = "chat.completion.chunk"
    legacy = False  # the executor is asked for chat; TextFormat's calls are legacy completions

    def response(self, result: dict[str, Any], who: Identity, usage: dict[str, Any] | None) -> dict[str, Any]:
        result.update(envelope(who, self.object))
        if usage is not None:
            result["usage"] = usage
        return result

    def chunk(self, chunk: dict[str, Any], who: Identity) -> dict[str, Any] | None:
        if not chunk.get("choices"):
            return None  # usage-only chunk: re-emitted canonically at the end
        chunk.update(envelope(who, self.chunk_object))
        chunk.pop("usage", None)
        return chunk

    def usage_chunk(self, usage: dict[str, Any], who: Identity, fingerprint: str | None = None) -> dict[str, Any]:
        chunk = envelope(who, self.chunk_object, choices=[], usage=usage)
        if fingerprint:
            chunk["system_fingerprint"] = fingerprint  # as on every other chunk of the stream
        return chunk

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        """The JSON body of an error answered before the stream committed."""
        return openai_error(error)

    def error_chunk(self, who: Identity, code: str, message: str, status: int | None = None) -> dict[str, Any]:
        """OpenRouter's mid-stream error event: finish_reason "error" and an error object (`status`: the error's,
        when known)."""
        return envelope(
            who,
            self.chunk_object,
            error={"code": code, "message": message},
            choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        )


class TextFormat(ChatFormat):
    """Legacy `text_completion` objects and chunks, as the deployment answered them (natively, or translated from
    chat by the executor): only our envelope is put on."""

    object = chunk_object = "text_completion"
    legacy = True

    def error_chunk(self, who: Identity, code: str, message: str, status: int | None = None) -> dict[str, Any]:
        return envelope(
            who,
            self.chunk_object,
            error={"code": code, "message": message},
            choices=[{"index": 0, "text": "", "logprobs": None, "finish_reason": "error"}],
        )


def identity(request_id: str, model: str, provider: str) -> Identity:
    return Identity(id=request_id, model=model, provider=provider, created=int(time.time()))
