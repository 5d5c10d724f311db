"""Anthropic Messages onto OpenAI chat and back, pure: a Messages request as a chat request, a chat completion as a
Message, and chat stream chunks as Anthropic's stream events. For deployments that do not speak Messages natively."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}
_PASSED = ("max_tokens", "temperature", "top_p", "top_k")


class TranslationError(ValueError):
    """A Messages request that has no chat equivalent; the message names the field."""


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """A checked Messages request body as an OpenAI chat-completions payload (no `model`, no `stream`)."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system, "system")})
    for i, message in enumerate(body.get("messages") or ()):
        messages.extend(_chat_messages(message, f"messages[{i}]"))
    payload: dict[str, Any] = {"messages": messages}
    for name in _PASSED:
        if body.get(name) is not None:
            payload[name] = body[name]
    if body.get("stop_sequences"):
        payload["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        payload["tools"] = [_chat_tool(tool, f"tools[{i}]") for i, tool in enumerate(body["tools"])]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        payload.update(_chat_tool_choice(choice))
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        payload["user"] = user
    return payload


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    raise TranslationError(f"`{where}` must be a string or a list of text blocks")


def _chat_messages(message: dict[str, Any], where: str) -> Iterator[dict[str, Any]]:
    role, content = message.get("role"), message.get("content")
    if not isinstance(content, list):
        yield {"role": role, "content": content}
        return
    if role == "assistant":
        yield _assistant(content, where)
        return
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        kind = block.get("type")
        if kind == "tool_result":  # each result is its own `tool` message, right after the assistant's calls
            yield {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": _result_text(block)}
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, f"{where}.content[{j}]")}})
        elif kind not in ("thinking", "redacted_thinking"):
            raise TranslationError(f"`{where}.content[{j}].type` {kind!r} cannot be sent to this deployment")
    if parts:
        texts_only = all(p["type"] == "text" for p in parts)
        yield {"role": role, "content": "".join(p["text"] for p in parts) if texts_only else parts}


def _assistant(content: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """Text and tool_use blocks as one assistant message; thinking blocks are not sent (chat has no input form for
    them that every server accepts)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name", ""), "arguments": arguments}
            calls.append({"id": block.get("id", ""), "type": "function", "function": function})
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        out["tool_calls"] = calls
    return out


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    text = content if isinstance(content, str) else _text_of(content or [], "tool_result.content")
    return f"Error: {text}" if block.get("is_error") else text


def _image_url(block: dict[str, Any], where: str) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    if source.get("type") == "url":
        return str(source.get("url", ""))
    raise TranslationError(f"`{where}.source.type` must be `base64` or `url`")


def _chat_tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str):
        raise TranslationError(f"`{where}.name` is required")
    function = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: dict[str, Any]) -> dict[str, Any]:
    kind = choice.get("type")
    out: dict[str, Any] = {}
    if kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    elif kind in ("auto", "none"):
        out["tool_choice"] = kind
    elif kind == "any":
        out["tool_choice"] = "required"
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def messages_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Chat usage in Anthropic's terms: `input_tokens` excludes the prompt tokens read from the cache."""
    usage = usage or {}
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    return {
        "input_tokens": max(0, prompt - cached),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def message_from_chat(result: dict[str, Any], message_id: str, model: str) -> dict[str, Any]:
    """A chat completion as Anthropic's Message object."""
    choices = result.get("choices") or [{}]
    message = choices[0].get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        block = {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", "")}
        content.append({**block, "input": _arguments(function.get("arguments"))})
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choices[0].get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": messages_usage(result.get("usage")),
    }


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"arguments": arguments}  # what the model wrote stays visible, not dropped
    return parsed if isinstance(parsed, dict) else {"value": parsed}


class EventWriter:
    """Chat stream chunks in, Anthropic stream events out (as dicts with their `type`), one instance per stream."""

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id, self.model = message_id, model
        self._open: str | None = None  # the kind of the open content block
        self._index = -1
        self._tools: dict[int, int] = {}  # chat tool_call index -> content block index
        self._stop = "end_turn"
        self.usage: dict[str, Any] | None = None

    def start(self) -> list[dict[str, Any]]:
        """message_start and a ping, sent once the stream has committed."""
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}, {"type": "ping"}]

    def chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events one chat chunk makes."""
        events: list[dict[str, Any]] = []
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if reasoning:
                events += self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                events.append(self._delta({"type": "thinking_delta", "thinking": reasoning}))
            if delta.get("content"):
                events += self._block("text", {"type": "text", "text": ""})
                events.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                events += self._tool(call)
            if choice.get("finish_reason"):
                self._stop = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return events

    def finish(self, usage: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Close the open block, then message_delta (stop reason, usage) and message_stop."""
        events = self._close()
        delta = {"stop_reason": self._stop, "stop_sequence": None}
        events.append({"type": "message_delta", "delta": delta, "usage": messages_usage(usage or self.usage)})
        events.append({"type": "message_stop"})
        return events

    def _tool(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        position = int(call.get("index") or 0)
        function = call.get("function") or {}
        if position not in self._tools:
            events += self._close()
            self._index += 1
            self._tools[position] = self._index
            self._open = f"tool:{position}"
            block = {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""), "input": {}}
            events.append({"type": "content_block_start", "index": self._index, "content_block": block})
        arguments = function.get("arguments")
        if arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append({"type": "content_block_delta", "index": self._tools[position], "delta": delta})
        return events

    def _block(self, kind: str, block: dict[str, Any]) -> list[dict[str, Any]]:
        if self._open == kind:
            return []
        events = self._close()
        self._index += 1
        self._open = kind
        events.append({"type": "content_block_start", "index": self._index, "content_block": block})
        return events

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self._index, "delta": delta}

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._index}]
