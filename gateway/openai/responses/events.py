"""Chat-completion chunks as the Responses API's stream events (pure), each with its `sequence_number`.

One EventTranslator per stream: `opening()` (created, in_progress), `feed(chunk)` for each chunk as it arrives,
then `completed(usage)` or `failed(code, message)`. It keeps the output it has built, for the stored response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.openai.responses.outbound import (
    Envelope,
    finished,
    function_item,
    message_item,
    new_id,
    reasoning_item,
    usage_of,
)

Event = dict[str, Any]


def sse_event(event: Event) -> bytes:
    """One event as SSE, named by its type as OpenAI sends it."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class EventTranslator:
    """Turns one chat stream into Responses events; items open when their first delta arrives."""

    def __init__(self, env: Envelope, make_id: Callable[[str], str] = new_id) -> None:
        self.env, self._make_id = env, make_id
        self.sequence = 0
        self.output: list[dict[str, Any]] = []  # finished items, in output order
        self._open: dict[str, Any] | None = None  # the item being streamed: {"kind", "index", "item", "text"}
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> its open function_call state
        self.finish_reason: str | None = None
        self.response: dict[str, Any] | None = None  # the final response, once completed or failed

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def opening(self) -> list[Event]:
        skeleton = self.env.response("in_progress", [])
        return [
            self._event("response.created", response=skeleton),
            self._event("response.in_progress", response=skeleton),
        ]

    def _next_index(self) -> int:
        return len(self.output) + (1 if self._open is not None else 0) + len(self._calls)

    def _close(self) -> list[Event]:
        state, self._open = self._open, None
        if state is None:
            return []
        index, item_id, text = state["index"], state["item"]["id"], state["text"]
        if state["kind"] == "reasoning":
            item = reasoning_item(item_id, text)
            events = [
                self._event(
                    "response.reasoning_text.done", item_id=item_id, output_index=index, content_index=0, text=text
                )
            ]
        else:
            item = message_item(item_id, text)
            part = item["content"][0]
            events = [
                self._event(
                    "response.output_text.done",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    text=text,
                    logprobs=[],
                ),
                self._event(
                    "response.content_part.done", item_id=item_id, output_index=index, content_index=0, part=part
                ),
            ]
        events.append(self._event("response.output_item.done", output_index=index, item=item))
        self.output.append(item)
        return events

    def _close_calls(self) -> list[Event]:
        events: list[Event] = []
        for state in self._calls.values():
            item = function_item(state["id"], state["call_id"], state["name"], state["arguments"])
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=state["id"],
                    output_index=state["index"],
                    name=state["name"],
                    arguments=state["arguments"],
                )
            )
            events.append(self._event("response.output_item.done", output_index=state["index"], item=item))
            self.output.append(item)
        self._calls = {}
        return events

    def _text(self, kind: str, delta: str) -> list[Event]:
        events: list[Event] = []
        if self._open is not None and self._open["kind"] != kind:
            events += self._close()
        if self._open is None:
            events += self._close_calls()
            index = self._next_index()
            if kind == "reasoning":
                item = reasoning_item(self._make_id("rs"), "")
                events.append(self._event("response.output_item.added", output_index=index, item=item))
            else:
                item = message_item(self._make_id("msg"), "", status="in_progress")
                events.append(self._event("response.output_item.added", output_index=index, item=item))
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                events.append(
                    self._event(
                        "response.content_part.added",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        part=part,
                    )
                )
            self._open = {"kind": kind, "index": index, "item": item, "text": ""}
        state = self._open
        state["text"] += delta
        name = "response.reasoning_text.delta" if kind == "reasoning" else "response.output_text.delta"
        extra: dict[str, Any] = {} if kind == "reasoning" else {"logprobs": []}
        events.append(
            self._event(
                name, item_id=state["item"]["id"], output_index=state["index"], content_index=0, delta=delta, **extra
            )
        )
        return events

    def _tool_call(self, call: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        position = int(call.get("index") or 0)
        function = call.get("function") or {}
        state = self._calls.get(position)
        if state is None:
            events += self._close()
            state = {
                "id": self._make_id("fc"),
                "call_id": str(call.get("id") or self._make_id("call")),
                "name": str(function.get("name") or ""),
                "arguments": "",
                "index": self._next_index(),
            }
            self._calls[position] = state
            item = function_item(state["id"], state["call_id"], state["name"], "", status="in_progress")
            events.append(self._event("response.output_item.added", output_index=state["index"], item=item))
        elif function.get("name") and not state["name"]:
            state["name"] = str(function["name"])
        arguments = function.get("arguments")
        if arguments:
            state["arguments"] += arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=state["id"],
                    output_index=state["index"],
                    delta=arguments,
                )
            )
        return events

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        """The events one chat chunk makes (only its first choice: Responses has one output)."""
        events: list[Event] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                events += self._text("reasoning", reasoning)
            content = delta.get("content")
            if isinstance(content, str) and content:
                events += self._text("message", content)
            for call in delta.get("tool_calls") or ():
                events += self._tool_call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def completed(self, chat_usage: dict[str, Any] | None) -> list[Event]:
        """Close every open item and end with `response.completed` (or `.incomplete`), carrying the usage."""
        events = self._close() + self._close_calls()
        status, incomplete = finished(self.finish_reason)
        self.response = self.env.response(status, self.output, usage_of(chat_usage), incomplete=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=self.response)]

    def failed(self, code: str, message: str) -> list[Event]:
        """End a stream that broke after it started: `response.failed` with the error, never a silent close."""
        self._open, self._calls = None, {}
        error = {"code": code or "server_error", "message": message}
        self.response = self.env.response("failed", self.output, error=error)
        return [self._event("response.failed", response=self.response)]
