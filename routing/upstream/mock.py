"""The in-process mock deployment: a transport mounted on `mock://` that answers in OpenAI JSON or SSE bytes.

It answers the UpstreamRequest the OpenAI adapter built, so a mock call takes the path of a real one (the
transport's `open`, `read_json` or `sse_batches`, and the adapter's parsing); only the socket is missing. The
deployment's `mock` options shape the reply: `ttft_ms` before the first byte, `chunk_delay_ms` between tokens,
`completion_tokens` or a fixed `reply`; the request's max_tokens cuts it with finish_reason "length", and usage
counts what was sent.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque

import orjson

from adapters.base import UpstreamRequest
from adapters.tokens import count_tokens, prompt_text, split_tokens
from routing.config.schema import DeploymentConfig, MockOptions
from routing.upstream.http1_response import Headers

_WORDS = (
    "the gateway routes each request to a deployment by weight and falls back when one fails while "
    "every call is logged with its tokens cost and latency so operators can see what happened"
).split()
_DONE = b"data: [DONE]\n\n"


class MockTransport:
    """Serves `mock://` deployments: POST {base_url}/chat/completions, streamed or not."""

    async def open(self, dep: DeploymentConfig, request: UpstreamRequest, deadline: float) -> MockResponse:
        if request.method != "POST" or not request.url.endswith("/chat/completions"):
            return _error(404, "the mock deployment serves POST /chat/completions only", deadline)
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return _error(400, "the request body is not JSON", deadline)
        if not isinstance(payload, dict):
            return _error(400, "the request body is not a JSON object", deadline)
        prompt = prompt_text(payload.get("messages"))
        limit = payload.get("max_tokens") or payload.get("max_completion_tokens")
        max_tokens = int(limit) if isinstance(limit, int | float) and not isinstance(limit, bool) else None
        pieces, finish = reply_pieces(prompt, dep.mock, max_tokens)
        model = payload.get("model")
        model = model if isinstance(model, str) else dep.provider_model_id
        ttft, gap = dep.mock.ttft_ms / 1000.0, dep.mock.chunk_delay_ms / 1000.0
        if not request.stream:
            body = _completion(model, pieces, finish, usage_for(prompt, pieces))
            return MockResponse(200, "application/json", [(ttft + gap * len(pieces), body)], deadline)
        options = payload.get("stream_options")
        usage = usage_for(prompt, pieces) if isinstance(options, dict) and options.get("include_usage") else None
        return MockResponse(200, "text/event-stream", _events(model, pieces, finish, usage, ttft, gap), deadline)


class MockResponse:
    """The body as timed parts: each is readable once its offset from the start has passed."""

    __slots__ = ("_parts", "deadline", "headers", "status")

    def __init__(self, status: int, content_type: str, parts: list[tuple[float, bytes]], deadline: float) -> None:
        self.status, self.deadline = status, deadline
        self.headers = Headers({"content-type": content_type})
        start = asyncio.get_running_loop().time()
        self._parts = deque((start + offset, data) for offset, data in parts)

    def at_eof(self) -> bool:
        return not self._parts

    def read_nowait(self) -> bytes:
        """Every part due by now, joined; b"" when none is."""
        return self._due(at_least_one=False)

    def _due(self, at_least_one: bool) -> bytes:
        parts = self._parts
        if not parts:
            return b""
        now = asyncio.get_running_loop().time()
        due: list[bytes] = [parts.popleft()[1]] if at_least_one else []
        while parts and parts[0][0] <= now:
            due.append(parts.popleft()[1])
        return due[0] if len(due) == 1 else b"".join(due)

    async def readany(self) -> bytes:
        """The next part, waiting until it is due; b"" at the end."""
        if not self._parts:
            return b""
        wait = self._parts[0][0] - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        # a timer may fire a little early (uvloop's resolution is 1 ms): the first part is due now whatever the
        # clock says, or the empty read would look like the end of the body
        return self._due(at_least_one=True)

    async def read(self, limit: int | None = None, idle: float | None = None) -> bytes:
        """The whole body (or its first `limit` bytes); `idle` bounds each wait, as on a socket."""
        chunks: list[bytes] = []
        loop = asyncio.get_running_loop()
        while self._parts:
            if idle is None:
                chunks.append(await self.readany())
                continue
            async with asyncio.timeout_at(min(loop.time() + idle, self.deadline)):
                chunks.append(await self.readany())
        body = b"".join(chunks)
        return body if limit is None else body[:limit]

    def release(self) -> None:
        self._parts.clear()

    def close(self) -> None:
        self._parts.clear()


def _error(status: int, message: str, deadline: float) -> MockResponse:
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})
    return MockResponse(status, "application/json", [(0.0, body)], deadline)


def _completion(model: str, pieces: list[str], finish: str, usage: dict[str, int]) -> bytes:
    message = {"role": "assistant", "content": "".join(pieces)}
    return orjson.dumps(
        {
            "id": "mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
    )


def _events(
    model: str, pieces: list[str], finish: str, usage: dict[str, int] | None, ttft: float, gap: float
) -> list[tuple[float, bytes]]:
    """The SSE body in parts: role and first token at `ttft`, each later token `gap` after the one before, the
    finish (and usage, and [DONE]) with the last token, as the earlier in-process mock timed them."""
    envelope = {"id": "mock", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    head = b"data: " + orjson.dumps(envelope)[:-1]  # the object left open for its "choices"
    open_choice = head + b',"choices":[{"index":0,"delta":'

    def chunk(delta: bytes, reason: bytes = b"null") -> bytes:
        return open_choice + delta + b',"finish_reason":' + reason + b"}]}\n\n"

    tokens = [chunk(b'{"content":' + orjson.dumps(piece) + b"}") for piece in pieces]
    end = chunk(b"{}", orjson.dumps(finish))
    if usage is not None:
        end += head + b',"choices":[],"usage":' + orjson.dumps(usage) + b"}\n\n"
    end += _DONE
    first = chunk(b'{"role":"assistant","content":""}')
    if gap <= 0 or len(tokens) < 2:
        return [(ttft, b"".join((first, *tokens, end)))]
    parts = [(ttft, first + tokens[0])]
    parts.extend((ttft + gap * i, token) for i, token in enumerate(tokens[1:], 1))
    last_offset, last = parts[-1]
    parts[-1] = (last_offset, last + end)
    return parts


def reply_pieces(prompt: str, options: MockOptions, max_tokens: int | None) -> tuple[list[str], str]:
    """The reply as one-token pieces (joined they form the text) and its finish reason."""
    if options.reply:
        tokens = split_tokens(options.reply)
    else:
        start = zlib.crc32(prompt.encode()) % len(_WORDS)
        tokens = [_WORDS[(start + i) % len(_WORDS)] for i in range(options.completion_tokens)]
    finish = "stop"
    if max_tokens is not None and 0 < max_tokens < len(tokens):
        tokens, finish = tokens[:max_tokens], "length"
    pieces = [t if i == 0 or not t[0].isalnum() else " " + t for i, t in enumerate(tokens)]
    return pieces, finish


def usage_for(prompt: str, pieces: list[str]) -> dict[str, int]:
    prompt_tokens = count_tokens(prompt)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(pieces),
        "total_tokens": prompt_tokens + len(pieces),
    }
