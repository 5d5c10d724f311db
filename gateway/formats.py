"""Response shapes: OpenAI chat completions and the legacy text completions, whole and as SSE chunks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class Identity:
    """What every chunk of one response carries: our id, the public model, one creation time, the provider."""

    id: str
    model: str
    provider: str
    created: int


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class ChatFormat:
    """`chat.completion` / `chat.completion.chunk`."""

    def response(self, result: dict[str, Any], who: Identity, usage: dict[str, Any] | None) -> dict[str, Any]:
        result["id"], result["object"], result["model"] = who.id, "chat.completion", who.model
        result["created"] = who.created
        result["provider"] = who.provider
        if usage is not None:
            result["usage"] = usage
        return result

    def chunk(self, chunk: dict[str, Any], who: Identity) -> dict[str, Any] | None:
        if not chunk.get("choices"):
            return None  # usage-only chunk: re-emitted canonically at the end
        chunk["id"], chunk["object"], chunk["created"], chunk["model"] = (
            who.id,
            "chat.completion.chunk",
            who.created,
            who.model,
        )
        chunk["provider"] = who.provider
        chunk.pop("usage", None)
        return chunk

    def usage_chunk(self, usage: dict[str, Any], who: Identity) -> dict[str, Any]:
        return {
            "id": who.id,
            "object": "chat.completion.chunk",
            "created": who.created,
            "model": who.model,
            "provider": who.provider,
            "choices": [],
            "usage": usage,
        }

    def error_chunk(self, who: Identity, code: str, message: str) -> dict[str, Any]:
        """OpenRouter's mid-stream error event: finish_reason "error" and an error object."""
        return {
            "id": who.id,
            "object": "chat.completion.chunk",
            "created": who.created,
            "model": who.model,
            "provider": who.provider,
            "error": {"code": code, "message": message},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }


class TextFormat(ChatFormat):
    """Legacy `text_completion` objects, mapped from chat results."""

    def response(self, result: dict[str, Any], who: Identity, usage: dict[str, Any] | None) -> dict[str, Any]:
        choices = [
            {
                "text": (c.get("message") or {}).get("content") or "",
                "index": c.get("index", 0),
                "logprobs": None,
                "finish_reason": c.get("finish_reason"),
            }
            for c in result.get("choices") or []
        ]
        out: dict[str, Any] = {
            "id": who.id,
            "object": "text_completion",
            "created": who.created,
            "model": who.model,
            "provider": who.provider,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out

    def chunk(self, chunk: dict[str, Any], who: Identity) -> dict[str, Any] | None:
        choices = chunk.get("choices")
        if not choices:
            return None
        return {
            "id": who.id,
            "object": "text_completion",
            "created": who.created,
            "model": who.model,
            "provider": who.provider,
            "choices": [
                {
                    "text": (c.get("delta") or {}).get("content") or "",
                    "index": c.get("index", 0),
                    "logprobs": None,
                    "finish_reason": c.get("finish_reason"),
                }
                for c in choices
            ],
        }

    def usage_chunk(self, usage: dict[str, Any], who: Identity) -> dict[str, Any]:
        return {
            "id": who.id,
            "object": "text_completion",
            "created": who.created,
            "model": who.model,
            "provider": who.provider,
            "choices": [],
            "usage": usage,
        }


def identity(request_id: str, model: str, provider: str) -> Identity:
    return Identity(id=request_id, model=model, provider=provider, created=int(time.time()))
