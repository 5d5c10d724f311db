"""OpenAI chat onto Anthropic Messages and back, pure: a chat request as a Messages request (for `kind: anthropic`),
a Message as a chat completion, and Anthropic's stream events as chat chunks, each chunk keeping the event it
came from (`Relayed.event`) so a Messages client can be given the upstream's own events."""

from __future__ import annotations

from typing import Any

import orjson

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
DEFAULT_MAX_TOKENS = 4096  # Messages requires max_tokens; chat does not


class Relayed(dict[str, Any]):
    """A chat chunk or completion translated from an Anthropic answer; `event` is the upstream's own object."""

    event: dict[str, Any]

    def __init__(self, chat: dict[str, Any], event: dict[str, Any]) -> None:
        super().__init__(chat)
        self.event = event


def messages_request(payload: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat payload as a Messages request body (no `model`, no `stream`)."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in payload.get("messages") or ():
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(content if isinstance(content, str) else _joined(content))
        elif role == "tool":
            text = content if isinstance(content, str) else _joined(content)
            _add(
                messages,
                "user",
                [{"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""), "content": text}],
            )
        elif role == "assistant":
            _add(messages, "assistant", _assistant_blocks(message))
        else:
            _add(messages, "user", _user_blocks(content))
    max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens") or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens}
    if system:
        body["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p", "top_k"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    stop = payload.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if payload.get("tools"):
        body["tools"] = [_tool(t) for t in payload["tools"] if isinstance(t, dict)]
    choice = _tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
    if choice:
        body["tool_choice"] = choice
    return body


def _joined(content: Any) -> str:
    return "".join(str(p.get("text", "")) for p in content or () if isinstance(p, dict))


def _add(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Messages alternate roles: consecutive turns of one role (tool results, then the user's text) merge."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content or ():
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            blocks.append({"type": "image", "source": _image_source(url)})
    return blocks


def _image_source(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        media, _, data = url[5:].partition(";base64,")
        return {"type": "base64", "media_type": media, "data": data}
    return {"type": "url", "url": url}


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    text = content if isinstance(content, str) else _joined(content)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = {}
        block = {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", "")}
        blocks.append({**block, "input": arguments if isinstance(arguments, dict) else {}})
    return blocks


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    out = {"name": function.get("name", ""), "input_schema": function.get("parameters") or {"type": "object"}}
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None = None
    if choice in ("auto", "none"):
        out = {"type": choice}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict):
        out = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    if parallel is False:
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def chat_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic usage in chat terms: the prompt counts cache reads and writes too."""
    usage = usage or {}
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached + int(usage.get("cache_creation_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def chat_from_message(message: dict[str, Any]) -> Relayed:
    """A Message as a chat completion (keeping the Message)."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            function = {"name": block.get("name", ""), "arguments": orjson.dumps(block.get("input") or {}).decode()}
            calls.append({"id": block.get("id", ""), "type": "function", "function": function})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or (None if calls else "")}
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    if calls:
        reply["tool_calls"] = calls
    finish = FINISH_REASONS.get(message.get("stop_reason") or "end_turn", "stop")
    chat = {
        "id": message.get("id", ""),
        "object": "chat.completion",
        "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
        "usage": chat_usage(message.get("usage")),
    }
    return Relayed(chat, message)


class ChunkReader:
    """Anthropic stream events in, chat chunks out, one instance per stream. Usage comes whole with message_stop
    (input from message_start, output from message_delta), so no chunk before the content commits the stream."""

    def __init__(self) -> None:
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # content block index -> chat tool_call index

    def read(self, event: dict[str, Any]) -> Relayed:
        kind = event.get("type")
        choice: dict[str, Any] | None = None
        usage: dict[str, Any] | None = None
        if kind == "message_start":
            self._usage.update((event.get("message") or {}).get("usage") or {})
            choice = _choice({"role": "assistant"})
        elif kind == "content_block_start":
            choice = self._started(event)
        elif kind == "content_block_delta":
            choice = self._delta(event)
        elif kind == "message_delta":
            self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop = (event.get("delta") or {}).get("stop_reason") or "end_turn"
            choice = _choice({}, FINISH_REASONS.get(stop, "stop"))
        elif kind == "message_stop":
            usage = chat_usage(self._usage)
        chat: dict[str, Any] = {"object": "chat.completion.chunk", "choices": [choice] if choice else []}
        if usage is not None:
            chat["usage"] = usage
        return Relayed(chat, event)

    def _started(self, event: dict[str, Any]) -> dict[str, Any] | None:
        block = event.get("content_block") or {}
        if block.get("type") != "tool_use":
            text = block.get("text") if block.get("type") == "text" else None
            return _choice({"content": text}) if text else None
        position = self._tools[int(event.get("index") or 0)] = len(self._tools)
        function = {"name": block.get("name", ""), "arguments": ""}
        return _choice(
            {"tool_calls": [{"index": position, "id": block.get("id", ""), "type": "function", "function": function}]}
        )

    def _delta(self, event: dict[str, Any]) -> dict[str, Any] | None:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return _choice({"content": delta.get("text", "")})
        if kind == "thinking_delta":
            return _choice({"reasoning_content": delta.get("thinking", "")})
        if kind == "input_json_delta":
            position = self._tools.get(int(event.get("index") or 0), 0)
            call = {"index": position, "function": {"arguments": delta.get("partial_json", "")}}
            return _choice({"tool_calls": [call]})
        return None


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish}
