"""Chat-completions answers as Responses API objects (pure): output items, usage, the `response` envelope."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# request fields a Response echoes back
_ECHOED = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "reasoning",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
)
_DEFAULTS: dict[str, Any] = {
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "text": {"format": {"type": "text"}},
    "truncation": "disabled",
    "metadata": {},
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every state of one response shares: its id, model, creation time and the request's echoed fields."""

    id: str
    model: str
    created_at: int
    echoed: dict[str, Any] = field(default_factory=dict)
    store: bool = True

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        incomplete: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": output,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "store": self.store,
            **_DEFAULTS,
            "instructions": None,
            "previous_response_id": None,
            "temperature": None,
            "top_p": None,
            "max_output_tokens": None,
            "reasoning": None,
            **self.echoed,
            "usage": usage,
        }
        return body


def envelope(body: dict[str, Any], resp_id: str, model: str, created_at: int) -> Envelope:
    echoed = {k: body[k] for k in _ECHOED if body.get(k) is not None}
    return Envelope(resp_id, model, created_at, echoed, body.get("store") is not False)


def usage_of(chat: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage (prompt/completion tokens) in Responses' terms (input/output tokens)."""
    if not chat:
        return None
    prompt = int(chat.get("prompt_tokens") or 0)
    completion = int(chat.get("completion_tokens") or 0)
    cached = int((chat.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((chat.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": int(chat.get("total_tokens") or prompt + completion),
    }
    if chat.get("cost") is not None:
        usage["cost"] = chat["cost"]
    return usage


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status != "in_progress" else []
    )
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    content = [{"type": "reasoning_text", "text": text}] if text else []
    return {"id": item_id, "type": "reasoning", "summary": [], "content": content}


def function_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def reasoning_text(message: dict[str, Any]) -> str:
    value = message.get("reasoning") or message.get("reasoning_content")
    return value if isinstance(value, str) else ""


def output_of(result: dict[str, Any], make_id: Callable[[str], str] = new_id) -> list[dict[str, Any]]:
    """A whole chat completion's first choice as output items: reasoning, then the message, then tool calls."""
    choices = result.get("choices") or [{}]
    message = choices[0].get("message") or {}
    output: list[dict[str, Any]] = []
    if reasoning := reasoning_text(message):
        output.append(reasoning_item(make_id("rs"), reasoning))
    content = message.get("content")
    if isinstance(content, str) and content:
        output.append(message_item(make_id("msg"), content))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        call_id = str(call.get("id") or make_id("call"))
        output.append(
            function_item(make_id("fc"), call_id, str(function.get("name") or ""), str(function.get("arguments") or ""))
        )
    return output


def finished(finish_reason: str | None) -> tuple[str, str | None]:
    """A chat finish reason as the response's status and incomplete reason."""
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def response_of(result: dict[str, Any], env: Envelope, make_id: Callable[[str], str] = new_id) -> dict[str, Any]:
    """A whole chat completion as a Response."""
    choices = result.get("choices") or [{}]
    status, incomplete = finished(choices[0].get("finish_reason"))
    return env.response(status, output_of(result, make_id), usage_of(result.get("usage")), incomplete=incomplete)
