"""A Responses API request as a chat-completions payload (pure): instructions, input items, tools, text format.

`history` is the conversation so far (the input and output items of the responses a `previous_response_id`
chain names), replayed before this request's own input, so a follow-up can land on any deployment.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import APIError

# Responses fields with a chat counterpart of the same name and meaning
_SAME = (
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "top_logprobs",
    "seed",
    "service_tier",
    "prompt_cache_key",
)
_ROLES = frozenset({"user", "assistant", "system", "developer"})


def _bad(param: str, message: str) -> APIError:
    return APIError(400, message, code="invalid_value", param=param)


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's `input` as a list of items (a string is one user message)."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise _bad("input", "`input` must be a string or a list of items")
    return [dict(item) for item in raw]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def _parts(content: Any, param: str) -> str | list[dict[str, Any]]:
    """Message content as chat content: text parts joined, images kept as image_url parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(param, f"`{param}` must be a string or a list of content parts")
    if all(isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "text") for p in content):
        return _text_of(content)
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "input_image" and isinstance(part, dict):
            url = part.get("image_url") or ""
            parts.append({"type": "image_url", "image_url": {"url": url, "detail": part.get("detail") or "auto"}})
        else:
            raise _bad(f"{param}[{i}]", f"`{param}[{i}]`: content part type {kind!r} is not supported here")
    return parts


def messages_of(items: list[dict[str, Any]], param: str = "input") -> list[dict[str, Any]]:
    """Input items as chat messages; consecutive function calls become one assistant turn with tool_calls."""
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        kind = item.get("type") or ("message" if "role" in item else None)
        where = f"{param}[{i}]"
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise _bad(f"{where}.role", f"`{where}.role` must be one of {sorted(_ROLES)}, got {role!r}")
            content = item.get("content")
            if role == "assistant":
                text = _text_of(content)
                last = messages[-1] if messages else None
                if last is not None and last["role"] == "assistant" and last.get("content") is None:
                    last["content"] = text  # text after this turn's tool calls: the same assistant turn
                else:
                    messages.append({"role": "assistant", "content": text})
            else:
                messages.append({"role": role, "content": _parts(content, f"{where}.content")})
        elif kind == "function_call":
            call = {
                "id": str(item.get("call_id") or item.get("id") or ""),
                "type": "function",
                "function": {"name": str(item.get("name") or ""), "arguments": str(item.get("arguments") or "")},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _text_of(output)
            messages.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": text})
        elif kind in ("reasoning", "item_reference"):
            continue  # reasoning is the model's own; chat upstreams take no reasoning input, and never as text
        else:
            raise _bad(f"{where}.type", f"`{where}.type` {kind!r} is not supported by this model's deployments")
    return messages


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad("tools", "`tools` must be a list")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise _bad(f"tools[{i}].type", f"`tools[{i}]`: only function tools can be translated, got {kind!r}")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    raise _bad("text.format.type", f"`text.format.type` {fmt.get('type')!r} is not supported")


def chat_payload(body: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat-completions body for one Responses request, `history` replayed first."""
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    messages += messages_of(history, "previous_response_id")
    messages += messages_of(input_items(body))
    payload: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for name in _SAME:
        if body.get(name) is not None:
            payload[name] = body[name]
    if body.get("max_output_tokens") is not None:
        payload["max_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        payload["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None and payload.get("tools"):
        payload["tool_choice"] = _tool_choice(body["tool_choice"])
    if (fmt := _response_format(body.get("text"))) is not None:
        payload["response_format"] = fmt
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        payload["reasoning_effort"] = reasoning["effort"]
    return payload
