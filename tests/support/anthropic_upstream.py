"""A fake Anthropic Messages upstream on a real loopback socket: `POST /v1/messages` (whole or streamed as Anthropic
streams it) and `POST /v1/messages/count_tokens`, with Anthropic's error shape.

Behaviour is the instance's `behaviour`, overridden by a request's `x-test-behaviour` header (JSON): status (with
`message`: the error's wording), error_after (send an `error` event after N text deltas), reply. A request with
`tools` whose last turn is not a tool result is answered with a `tool_use` of the first tool; a tool result is
answered with text that quotes it. Every response carries `x-upstream-name`; replies start with `[<name>]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections.abc import Iterator
from typing import Any, Self

from aiohttp import web

from tests.support.loop_server import LoopServer
from tests.support.upstream import RequestRecord, count_tokens

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _texts(body: dict[str, Any]) -> str:
    parts: list[str] = [body["system"]] if isinstance(body.get("system"), str) else []
    for message in body.get("messages") or ():
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        parts += [str(b.get("text") or b.get("content") or "") for b in blocks if isinstance(b, dict)]
    return " ".join(parts)


class AnthropicUpstream(LoopServer):
    """Speaks Anthropic's Messages API on 127.0.0.1 and checks `x-api-key` when given `key`."""

    def __init__(self, name: str, key: str = "", behaviour: dict[str, Any] | None = None) -> None:
        self.name, self.key = name, key
        self.behaviour = behaviour or {}
        self.requests: list[RequestRecord] = []
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port = 0
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return self.url  # as Anthropic's SDK takes it: no /v1

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, name: str, key: str = "", behaviour: dict[str, Any] | None = None) -> Iterator[Self]:
        with cls(name, key, behaviour).threaded(f"anthropic-upstream-{name}") as upstream:
            yield upstream

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", self._port))
        await web.SockSite(runner, sock).start()
        self._port, self._runner = sock.getsockname()[1], runner

    async def _stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def _error(self, status: int, message: str) -> web.Response:
        error = {"type": ERROR_TYPES.get(status, "api_error"), "message": message}
        body = {"type": "error", "error": error, "request_id": "req_fake"}
        return web.json_response(body, status=status, headers={"x-upstream-name": self.name})

    async def _checked(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]] | web.Response:
        body = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(RequestRecord(request.method, request.path, headers, body))
        if self.key and headers.get("x-api-key") != self.key:
            return self._error(401, "invalid x-api-key")
        if "anthropic-version" not in headers:
            return self._error(400, "anthropic-version: header is required")
        behaviour = {**self.behaviour, **json.loads(headers.get("x-test-behaviour", "{}"))}
        if behaviour.get("status", 200) >= 400:
            return self._error(behaviour["status"], behaviour.get("message", "simulated error"))
        return body, behaviour

    async def _count(self, request: web.Request) -> web.Response:
        checked = await self._checked(request)
        if isinstance(checked, web.Response):
            return checked
        body, _ = checked
        return web.json_response(
            {"input_tokens": count_tokens(_texts(body)) + 7}, headers={"x-upstream-name": self.name}
        )

    def _content(self, body: dict[str, Any], behaviour: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        last = (body.get("messages") or [{}])[-1].get("content")
        results = [b for b in last if b.get("type") == "tool_result"] if isinstance(last, list) else []
        if body.get("tools") and not results:
            tool = body["tools"][0]
            call = {
                "type": "tool_use",
                "id": f"toolu_{next(self._ids)}",
                "name": tool["name"],
                "input": {"city": "Paris"},
            }
            return [{"type": "text", "text": f"[{self.name}] calling"}, call], "tool_use"
        said = f" result: {results[0].get('content')}" if results else " hello from the native upstream"
        return [{"type": "text", "text": behaviour.get("reply", f"[{self.name}]{said}")}], "end_turn"

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        checked = await self._checked(request)
        if isinstance(checked, web.Response):
            return checked
        body, behaviour = checked
        content, stop = self._content(body, behaviour)
        usage = {
            "input_tokens": count_tokens(_texts(body)),
            "output_tokens": sum(count_tokens(json.dumps(c)) for c in content),
        }
        message = {
            "id": f"msg_{self.name}_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return web.json_response(message, headers={"x-upstream-name": self.name})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "x-upstream-name": self.name})
        await response.prepare(request)
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        await _send(response, {"type": "message_start", "message": start})
        await _send(response, {"type": "ping"})
        deltas = 0
        for index, block in enumerate(content):
            if block["type"] == "text":
                await _send(
                    response,
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                )
                for word in block["text"].split(" "):
                    if behaviour.get("error_after") is not None and deltas == behaviour["error_after"]:
                        await _send(
                            response, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                        )
                        return response
                    deltas += 1
                    piece = {"type": "text_delta", "text": word if deltas == 1 else f" {word}"}
                    await _send(response, {"type": "content_block_delta", "index": index, "delta": piece})
            else:
                started = {**block, "input": {}}
                await _send(response, {"type": "content_block_start", "index": index, "content_block": started})
                partial = json.dumps(block["input"])
                for piece in (partial[:5], partial[5:]):
                    await _send(
                        response,
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        },
                    )
            await _send(response, {"type": "content_block_stop", "index": index})
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        }
        await _send(response, delta)
        await _send(response, {"type": "message_stop"})
        return response


async def _send(response: web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
