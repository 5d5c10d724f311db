"""Parse and check a Messages request body, with errors that name the offending field; build its chat form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from adapters.anthropic import MessagesPayload
from adapters.messages_chat import TranslationError, chat_request
from gateway.errors import APIError
from gateway.openai.routing_fields import fallback_models, provider_routing, split_variant
from routing.request_routing import ProviderRouting

FORWARDED = ("anthropic-version", "anthropic-beta")  # passed to native deployments as the client sent them
_ROLES = ("user", "assistant")


@dataclass(frozen=True, slots=True)
class MessagesCall:
    """A checked Messages request: the public model asked for, whether it streams, and the payload the executor
    takes (the chat translation, carrying the Messages body for native deployments)."""

    model: str
    stream: bool
    payload: MessagesPayload
    original: dict[str, Any]
    wants: ProviderRouting | None = None  # OpenRouter's provider object (and a `:floor` / `:nitro` variant)
    fallbacks: tuple[str, ...] = ()  # OpenRouter's `models`: the models to try next, in order


def _bad(param: str, message: str) -> APIError:
    return APIError(400, message, code="invalid_value", param=param)


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "`messages` must be a non-empty list of {role, content} objects")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{i}]", f"`messages[{i}]` must be an object")
        if message.get("role") not in _ROLES:
            raise _bad(f"messages[{i}].role", f"`messages[{i}].role` must be `user` or `assistant`")
        content = message.get("content")
        if isinstance(content, list):
            if not all(isinstance(block, dict) and isinstance(block.get("type"), str) for block in content):
                raise _bad(f"messages[{i}].content", f"`messages[{i}].content` blocks must be objects with a `type`")
        elif not isinstance(content, str):
            raise _bad(f"messages[{i}].content", f"`messages[{i}].content` must be a string or a list of blocks")


def _check_shapes(body: dict[str, Any], count_tokens: bool) -> None:
    max_tokens = body.get("max_tokens")
    if not count_tokens or max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise _bad("max_tokens", "`max_tokens` is required and must be a whole number >= 1")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _bad("system", "`system` must be a string or a list of text blocks")
    for name in ("tools", "stop_sequences"):
        value = body.get(name)
        if value is not None and not isinstance(value, list):
            raise _bad(name, f"`{name}` must be a list")
    if any(not isinstance(tool, dict) for tool in body.get("tools") or ()):
        raise _bad("tools", "`tools` entries must be objects")
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, dict):
        raise _bad("tool_choice", '`tool_choice` must be an object such as {"type": "auto"}')
    if not isinstance(body.get("stream", False), bool):
        raise _bad("stream", "`stream` must be true or false")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _bad("metadata", "`metadata` must be an object")


def parse_messages(body: dict[str, Any], headers: Headers, count_tokens: bool = False) -> MessagesCall:
    """Check the fields the gateway relies on; the body itself goes to native deployments unchanged."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise APIError(400, "`model` is required and must be a string", code="missing_model", param="model")
    model, variant = split_variant(model)
    wants = provider_routing(body, variant)
    fallbacks = tuple(dict.fromkeys(m for m in (split_variant(m)[0] for m in fallback_models(body)) if m != model))
    body = {k: v for k, v in body.items() if k not in ("provider", "models")}  # the gateway's, not an upstream's
    _check_messages(body.get("messages"))
    _check_shapes(body, count_tokens)
    try:
        chat = chat_request(body)
    except TranslationError as exc:
        raise APIError(400, str(exc), code="invalid_value") from None
    forwarded = {name: value for name in FORWARDED if (value := headers.get(name))}
    stream = bool(body.get("stream", False)) and not count_tokens
    payload = MessagesPayload(chat, body, forwarded, count_tokens)
    return MessagesCall(model, stream, payload, body, wants, fallbacks)
