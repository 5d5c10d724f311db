"""Parse and check a chat-completions or legacy completions request body, with errors that name the offending
param."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import APIError
from gateway.openai.reasoning import hides_reasoning
from gateway.openai.routing_fields import fallback_models, provider_routing, split_variant
from routing.request_routing import ProviderRouting

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
# OpenRouter request extensions that generic OpenAI-compatible upstreams would reject.
GATEWAY_ONLY = frozenset({"models", "provider", "transforms", "route", "usage", "session_id"})


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A checked request: the public model name asked for, the body to forward, and how OpenRouter's fields
    steer it (`models` to fall back to, in order, and the `provider` object)."""

    model: str
    stream: bool
    include_usage: bool
    payload: dict[str, Any]
    original: dict[str, Any]
    fallbacks: tuple[str, ...] = ()
    wants: ProviderRouting | None = None
    hide_reasoning: bool = False  # `reasoning.exclude`: the answer carries no reasoning


def _bad(param: str, message: str) -> APIError:
    return APIError(400, message, code="invalid_value", param=param)


def _check_number(body: dict[str, Any], name: str, low: float, high: float | None, whole: bool = False) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not float(value).is_integer()):
        raise _bad(name, f"`{name}` must be a {'whole number' if whole else 'number'}, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise _bad(name, f"`{name}` must be {bounds}, got {value!r}")


def check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "`messages` must be a non-empty list of {role, content} objects")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{i}]", f"`messages[{i}]` must be an object")
        role = message.get("role")
        if role not in _ROLES:
            raise _bad(f"messages[{i}].role", f"`messages[{i}].role` must be one of {sorted(_ROLES)}, got {role!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _bad(f"messages[{i}].content", f"`messages[{i}].content` must be a string or a list of parts")
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            raise _bad(f"messages[{i}].content", f"`messages[{i}].content` parts must be objects")
        calls = message.get("tool_calls")
        if calls is not None and not (isinstance(calls, list) and all(isinstance(c, dict) for c in calls)):
            raise _bad(f"messages[{i}].tool_calls", f"`messages[{i}].tool_calls` must be a list of objects")
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise _bad(f"messages[{i}].name", f"`messages[{i}].name` must be a string")


def check_prompt(prompt: Any) -> None:
    """A legacy prompt as OpenAI takes it: a string, a list of strings, token ids, or a list of token-id lists."""
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt) or all(_token(p) for p in prompt):
            return
        if all(isinstance(p, list) and p and all(_token(t) for t in p) for p in prompt):
            return
    raise _bad("prompt", "`prompt` must be a string, a list of strings, token ids or a list of token-id lists")


def _token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_completion(body: dict[str, Any]) -> ChatRequest:
    """A legacy `/v1/completions` body: the prompt checked instead of messages, the rest as for chat."""
    check_prompt(body.get("prompt"))
    _check_number(body, "best_of", 1, 128, whole=True)
    _check_number(body, "logprobs", 0, None, whole=True)
    echo = body.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise _bad("echo", "`echo` must be true or false")
    return _parse(body)


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    """Check the fields the gateway relies on; everything else is forwarded untouched."""
    check_messages(body.get("messages"))
    return _parse(body)


def _parse(body: dict[str, Any]) -> ChatRequest:
    listed = fallback_models(body)
    model = body.get("model", listed[0] if listed else None)
    if not isinstance(model, str) or not model.strip():
        raise APIError(400, "`model` is required and must be a string", code="missing_model", param="model")
    model, variant = split_variant(model)
    fallbacks = tuple(dict.fromkeys(m for m in (split_variant(m)[0] for m in listed) if m != model))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("stream", "`stream` must be true or false")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _bad("stream_options", "`stream_options` must be an object")
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "max_tokens", 1, None, whole=True)
    _check_number(body, "max_completion_tokens", 1, None, whole=True)
    _check_number(body, "n", 1, 128, whole=True)
    usage_flag = body.get("usage")
    include_usage = bool((options or {}).get("include_usage")) or (
        isinstance(usage_flag, dict) and bool(usage_flag.get("include"))
    )
    payload = {k: v for k, v in body.items() if k not in GATEWAY_ONLY}
    payload.pop("stream", None)  # the adapter sets stream and stream_options (include_usage) for the upstream
    return ChatRequest(
        model=model,
        stream=stream,
        include_usage=include_usage,
        payload=payload,
        original=body,
        fallbacks=fallbacks,
        wants=provider_routing(body, variant),
        hide_reasoning=hides_reasoning(body),
    )
