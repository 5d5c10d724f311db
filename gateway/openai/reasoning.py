"""A request's `reasoning` object (OpenRouter's `{effort, max_tokens, exclude, enabled}`), checked, and
`exclude: true` applied to the answer: the model still reasons (and is billed for it), the client gets no
`reasoning` / `reasoning_content` / `reasoning_details`, whole or streamed. How each upstream is asked to reason
is the adapters' (adapters/reasoning.py)."""

from __future__ import annotations

from typing import Any

from adapters.reasoning import EFFORTS
from gateway.errors import APIError
from gateway.openai.formats import ChatFormat, Identity
from routing.errors import GatewayError

_FIELDS = ("reasoning", "reasoning_content", "reasoning_details")


def _bad(param: str, message: str) -> APIError:
    return APIError(400, message, code="invalid_value", param=param)


def hides_reasoning(body: dict[str, Any]) -> bool:
    """Check `reasoning`; True when the answer must not carry the reasoning. (A bare `reasoning_effort` goes to
    the upstream unchecked, as it always did: brands accept values beyond OpenRouter's.)"""
    asked = body.get("reasoning")
    if asked is None:
        return False
    if not isinstance(asked, dict):
        raise _bad("reasoning", "`reasoning` must be an object: {effort, max_tokens, exclude, enabled}")
    if asked.get("effort") is not None and asked["effort"] not in EFFORTS:
        raise _bad("reasoning.effort", f"`reasoning.effort` must be one of {list(EFFORTS)}, got {asked['effort']!r}")
    budget = asked.get("max_tokens")
    if budget is not None and (type(budget) is not int or budget < 0):
        raise _bad("reasoning.max_tokens", f"`reasoning.max_tokens` must be a whole number >= 0, got {budget!r}")
    for flag in ("exclude", "enabled"):
        if asked.get(flag) is not None and not isinstance(asked[flag], bool):
            raise _bad(f"reasoning.{flag}", f"`reasoning.{flag}` must be true or false")
    return bool(asked.get("exclude"))


def _strip(choices: Any, part: str) -> None:
    for choice in choices or ():
        inner = choice.get(part) if isinstance(choice, dict) else None
        if isinstance(inner, dict):
            for name in _FIELDS:
                inner.pop(name, None)


class WithoutReasoning(ChatFormat):
    """A surface's format with the reasoning taken out of every answer and chunk (`reasoning.exclude`)."""

    def __init__(self, inner: ChatFormat) -> None:
        self.inner = inner
        self.chunk_object = inner.chunk_object
        self.legacy = inner.legacy

    def response(self, result: dict[str, Any], who: Identity, usage: dict[str, Any] | None) -> dict[str, Any]:
        _strip(result.get("choices"), "message")
        return self.inner.response(result, who, usage)

    def chunk(self, chunk: dict[str, Any], who: Identity) -> dict[str, Any] | None:
        # a chunk that carried only reasoning still goes out, empty: the client sees the stream is alive
        _strip(chunk.get("choices"), "delta")
        return self.inner.chunk(chunk, who)

    def usage_chunk(self, usage: dict[str, Any], who: Identity, fingerprint: str | None = None) -> dict[str, Any]:
        return self.inner.usage_chunk(usage, who, fingerprint)

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return self.inner.error_body(error)

    def error_chunk(self, who: Identity, code: str, message: str, status: int | None = None) -> dict[str, Any]:
        return self.inner.error_chunk(who, code, message, status)
