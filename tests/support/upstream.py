"""A fake OpenAI-compatible upstream on a real loopback socket whose behaviour comes from the request.

A chat request may carry `x_test: {"<upstream name>": {...}, "*": {...}}`; the upstream answers with its
instance `behaviour`, overridden by `x_test["*"]`, overridden by `x_test[name]`. Behaviour keys:
status (+ retry_after), delay_headers, delay_first_chunk, chunk_delay, cut_after (abort the TCP connection
after N content chunks), stall_after (+ stall_seconds: go silent after N content chunks, then carry on),
malformed (+ malformed_after), reply, chunks, finish_reason (of the last chunk, e.g. vLLM's "abort"), no_done,
usage_in_last_chunk, reasoning_tokens, cached_tokens,
context_length (a prompt with more tokens gets OpenAI's 400 `context_length_exceeded`), error (with a 4xx/5xx
status: the error object to answer with), system_fingerprint (in every response, and in a stream's chunks as
fingerprint_on says: `all`, as OpenAI; `first`; `usage`, only in the usage chunk, as vLLM 0.32), reasoning
(+ reasoning_field, reasoning_chunks, reasoning_delay: a think streamed before the reply, as vLLM's
`delta.reasoning`, or `message.reasoning` when not streamed), health_status and health_delay (for GET /health
and /v1/models, taken from the instance behaviour only).
`POST /v1/completions` answers as vLLM and OpenAI do (tests/support/completions.py), with the same behaviours.
tool_call ({name, arguments}: answer with that call, finish_reason `tool_calls`, unless the last message is
already a tool result), tool_calls (+ tool_arguments: a request with `tools` whose last message is not a tool
result is answered with a call of its first tool; one that ends with a tool result gets a reply that quotes it).
POST /v1/embeddings answers deterministic vectors.
Every response carries `x-upstream-name`; the default reply starts with `[<name>]`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from tests.support import completions as text
from tests.support.loop_server import LoopServer

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORDS = "The quick brown fox jumps over the lazy dog".split()
_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


def count_tokens(text: str) -> int:
    """Count tokens with the one tokenizer the fake upstream uses for usage."""
    return len(_TOKEN.findall(text))


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Count the tokens in the text of chat messages (string content or text parts)."""
    contents = [message.get("content") for message in messages]
    texts = [c for c in contents if isinstance(c, str)]
    texts += [p.get("text", "") for c in contents if isinstance(c, list) for p in c if isinstance(p, Mapping)]
    return sum(map(count_tokens, texts))


def default_reply(name: str, chunks: int = 5) -> str:
    """The reply an upstream gives when the behaviour sets no `reply`: one word per chunk."""
    return " ".join([f"[{name}]", *itertools.islice(itertools.cycle(_WORDS), max(chunks, 1) - 1)])


def split_reply(text: str, chunks: int) -> list[str]:
    """Split text into at most `chunks` non-empty pieces on word boundaries; they concatenate to text."""
    words = re.findall(r"\s*\S+", text) or [text]
    words[-1] += text[len("".join(words)) :]
    n = max(1, min(chunks, len(words)))
    return ["".join(words[i * len(words) // n : (i + 1) * len(words) // n]) for i in range(n)]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the upstream answers one request; the module docstring describes each key."""

    status: int = 200
    retry_after: str | int | None = None
    delay_headers: float = 0.0
    delay_first_chunk: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 60.0
    malformed: bool = False
    malformed_after: int = 0
    reply: str | None = None
    chunks: int = 5
    finish_reason: str = "stop"
    no_done: bool = False
    usage_in_last_chunk: bool = False
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    context_length: int | None = None
    error: Mapping[str, Any] | None = None
    system_fingerprint: str | None = None
    fingerprint_on: str = "all"
    health_status: int = 200
    health_delay: float = 0.0
    reasoning: str | None = None
    reasoning_field: str = "reasoning"
    reasoning_chunks: int = 3
    reasoning_delay: float = 0.0
    tool_call: dict[str, Any] | None = None
    tool_calls: bool = False
    tool_arguments: str = '{"city": "Paris"}'

    @classmethod
    def merge(cls, *layers: Mapping[str, Any] | None) -> Behaviour:
        """Merge behaviour mappings, later layers winning; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        merged: dict[str, Any] = {}
        for layer in filter(None, layers):
            if not isinstance(layer, Mapping):
                raise ValueError(f"behaviour must be a mapping, got {type(layer).__name__}")
            if unknown := sorted(set(layer) - known):
                raise ValueError(f"unknown behaviour key(s) {unknown}; known: {sorted(known)}")
            merged.update(layer)
        return cls(**merged)


@dataclass(slots=True, eq=False)
class RequestRecord:
    """One request as the upstream received it, and how its handling ended."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.monotonic)
    client_disconnected: bool = False
    finished: bool = False
    ended: threading.Event = field(default_factory=threading.Event)

    async def wait_ended(self, within: float = 2.0) -> bool:
        """Wait without blocking the loop until the server stopped handling this request (sync: `ended.wait`)."""
        return await asyncio.to_thread(self.ended.wait, within)


class FakeUpstream(LoopServer):
    """An OpenAI-compatible server on 127.0.0.1 that reports its `name` in every response."""

    def __init__(
        self,
        name: str,
        behaviour: Mapping[str, Any] | None = None,
        *,
        models: Sequence[str] = ("fake-model",),
        port: int = 0,
    ) -> None:
        self.name = name
        self.models = tuple(models)
        self.requests: list[RequestRecord] = []
        self.behaviour = behaviour or {}
        self._port = port
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._ids = itertools.count(1)

    @property
    def behaviour(self) -> dict[str, Any]:
        """The default behaviour of this instance; a request's `x_test` is merged over it."""
        return self._behaviour

    @behaviour.setter
    def behaviour(self, value: Mapping[str, Any]) -> None:
        Behaviour.merge(value)
        self._behaviour = dict(value)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def count(self) -> int:
        """Number of chat completion requests received."""
        return sum(1 for record in self.requests if record.path == CHAT_PATH)

    @property
    def completions(self) -> list[RequestRecord]:
        """The `/v1/completions` requests received."""
        return [record for record in self.requests if record.path == COMPLETIONS_PATH]

    def reset(self) -> None:
        """Forget recorded requests."""
        self.requests.clear()

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, name: str, behaviour: Mapping[str, Any] | None = None, **kwargs: Any) -> Iterator[Self]:
        """Run an upstream on its own event loop in a background thread for the duration of the block."""
        with cls(name, behaviour, **kwargs).threaded(f"fake-upstream-{name}") as upstream:
            yield upstream

    async def _start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_post(CHAT_PATH, self._chat)
        app.router.add_post(COMPLETIONS_PATH, self._chat)
        app.router.add_post(EMBEDDINGS_PATH, self._embeddings)
        app.router.add_get("/v1/models", self._get)
        app.router.add_get("/health", self._get)
        self._add_routes(app)
        # handler_cancellation: a client that goes away cancels the handler, so a disconnect is seen at once.
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._port))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner = runner

    def _add_routes(self, app: web.Application) -> None:
        """Where a subclass adds the paths of another protocol (tests/support/responses_upstream.py)."""

    async def _stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._stopping = True  # in-flight requests are cancelled by us, not by their client
            try:
                await runner.cleanup()
            finally:
                self._stopping = False

    def _record(self, request: web.Request, body: Any) -> RequestRecord:
        headers = {key.lower(): value for key, value in request.headers.items()}
        record = RequestRecord(request.method, request.path, headers, body)
        self.requests.append(record)
        return record

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"x-upstream-name": self.name, **(extra or {})}

    def _error(
        self, status: int, message: str, retry_after: str | int | None = None, error: Mapping[str, Any] | None = None
    ) -> web.Response:
        headers = self._headers({} if retry_after is None else {"Retry-After": str(retry_after)})
        if error is None:
            kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
            error = {"message": f"[{self.name}] {message}", "type": kind, "code": status}
        return web.json_response({"error": error}, status=status, headers=headers)

    async def _get(self, request: web.Request) -> web.Response:
        behaviour = Behaviour.merge(self._behaviour)
        self._record(request, None).ended.set()
        await asyncio.sleep(behaviour.health_delay)
        if behaviour.health_status >= 400:
            return self._error(behaviour.health_status, f"{request.path} unavailable")
        payload: dict[str, Any] = {"status": "ok"}
        if request.path != "/health":
            data = [{"id": model, "object": "model", "created": 0, "owned_by": self.name} for model in self.models]
            payload = {"object": "list", "data": data}
        return web.json_response(payload, status=behaviour.health_status, headers=self._headers())

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        record = self._record(request, body)
        aborted = False
        legacy = request.path == COMPLETIONS_PATH
        try:
            if not isinstance(body, dict):
                return self._error(400, "body must be a JSON object")
            try:
                prompt_tokens = (
                    count_tokens(text.prompt_text(body)) if legacy else count_prompt_tokens(body["messages"])
                )
            except (text.BadPrompt, KeyError, TypeError, AttributeError):
                return self._error(400, "`prompt` is not valid" if legacy else "body must have a `messages` list")
            x_test = body.get("x_test") or {}
            try:
                behaviour = Behaviour.merge(self._behaviour, x_test.get("*"), x_test.get(self.name))
            except (ValueError, TypeError, AttributeError) as exc:
                return self._error(400, f"x_test: {exc}")
            await asyncio.sleep(behaviour.delay_headers)
            if behaviour.status >= 400:
                message = f"simulated {behaviour.status}"
                return self._error(behaviour.status, message, behaviour.retry_after, behaviour.error)
            if behaviour.context_length is not None and prompt_tokens > behaviour.context_length:
                error = text.context_error(behaviour.context_length, prompt_tokens, "prompt" if legacy else "messages")
                return web.json_response(error, status=400, headers=self._headers())
            reply = behaviour.reply if behaviour.reply is not None else default_reply(self.name, behaviour.chunks)
            usage = _usage(prompt_tokens, count_tokens(reply), behaviour)
            messages = body.get("messages") or []
            after_tool = bool(messages) and messages[-1].get("role") == "tool"
            call = None if after_tool else _call_for(body, behaviour, len(self.requests))
            if behaviour.tool_calls and after_tool:
                reply = f"[{self.name}] the tool said: {messages[-1].get('content')}"
                usage = _usage(prompt_tokens, count_tokens(reply), behaviour)
            model = body.get("model", self.models[0])
            prefix = "cmpl" if legacy else "chatcmpl"
            base = {"id": f"{prefix}-{self.name}-{next(self._ids)}", "created": int(time.time()), "model": model}
            if behaviour.system_fingerprint is not None:
                base["system_fingerprint"] = behaviour.system_fingerprint
            response: web.StreamResponse
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            pieces = split_reply(reply, behaviour.chunks)
            if legacy and not body.get("stream"):
                response = web.json_response(text.completion(base, body, reply, usage), headers=self._headers())
            elif legacy:
                events = text.chunks(base, body, pieces, usage if include_usage else None)
                response, aborted = await self._stream(request, _sse_all(events, behaviour), behaviour)
            elif not body.get("stream"):
                response = (
                    self._complete(base, reply, usage, behaviour, _n(body))
                    if call is None
                    else self._called(base, call, usage)
                )
            else:
                stream = _chunks(base, pieces, usage if include_usage else None, behaviour, _n(body), call)
                response, aborted = await self._stream(request, stream, behaviour)
            record.finished = not aborted
            return response
        except ConnectionError:
            record.client_disconnected = True
            raise
        except asyncio.CancelledError:
            record.client_disconnected = not (self._stopping or aborted)
            raise
        finally:
            record.ended.set()

    async def _embeddings(self, request: web.Request) -> web.Response:
        """OpenAI's embeddings: one vector per input (a string, strings, or token arrays), float or base64."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        record = self._record(request, body)
        record.ended.set()
        if not isinstance(body, dict) or "input" not in body:
            return self._error(400, "body must be a JSON object with `input`")
        try:
            behaviour = Behaviour.merge(self._behaviour, (body.get("x_test") or {}).get(self.name))
        except (ValueError, TypeError, AttributeError) as exc:
            return self._error(400, f"x_test: {exc}")
        await asyncio.sleep(behaviour.delay_headers)
        if behaviour.status >= 400:
            return self._error(behaviour.status, f"simulated {behaviour.status}", behaviour.retry_after)
        raw = body["input"]
        items = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw)
        dims = int(body.get("dimensions") or 4)
        data = []
        for i, item in enumerate(items):
            vector = embedding_of(item, dims)
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(count_tokens(t) if isinstance(t, str) else len(t) for t in items)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        payload = {"object": "list", "data": data, "model": body.get("model", self.models[0]), "usage": usage}
        return web.json_response(payload, headers=self._headers())

    def _called(self, base: dict[str, Any], call: dict[str, Any], usage: dict[str, Any]) -> web.Response:
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        payload = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        return web.json_response(payload, headers=self._headers())

    def _complete(
        self, base: dict[str, Any], reply: str, usage: dict[str, Any], b: Behaviour, n: int = 1
    ) -> web.Response:
        if b.malformed:
            return web.Response(
                text="<html>upstream exploded", content_type="application/json", headers=self._headers()
            )
        choices = []
        for j in range(n):
            message: dict[str, Any] = {"role": "assistant", "content": reply + _nth(j)}
            if b.reasoning is not None:
                message[b.reasoning_field] = b.reasoning
            choices.append({"index": j, "message": message, "finish_reason": b.finish_reason})
        payload = {**base, "object": "chat.completion", "choices": choices, "usage": usage}
        return web.json_response(payload, status=b.status, headers=self._headers())

    async def _stream(
        self, request: web.Request, stream: AsyncGenerator[bytes | None], b: Behaviour
    ) -> tuple[web.StreamResponse, bool]:
        headers = self._headers({"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        response = web.StreamResponse(status=b.status, headers=headers)
        await response.prepare(request)
        async with contextlib.aclosing(stream):
            async for event in stream:
                if event is None:
                    if request.transport is not None:
                        request.transport.abort()
                    return response, True
                await response.write(event)
        return response, False


def embedding_of(item: str | Sequence[int], dims: int) -> list[float]:
    """The fake's vector for one input: deterministic, exact in float32 (multiples of 1/8)."""
    seed = sum(map(ord, item)) if isinstance(item, str) else sum(item)
    return [((seed + k) % 16) / 8.0 for k in range(dims)]


def _usage(prompt: int, completion: int, b: Behaviour) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    usage["total_tokens"] = prompt + completion
    if b.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": b.cached_tokens}
    if b.reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": b.reasoning_tokens}
    return usage


def _n(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def _nth(index: int) -> str:
    """What tells choice `index` of an `n > 1` answer apart: choice 0 is the plain reply."""
    return f" #{index}" if index else ""


def _call_for(body: dict[str, Any], b: Behaviour, n: int) -> dict[str, Any] | None:
    """The tool call to answer with: the behaviour's own `tool_call`, or (`tool_calls`) one of the request's first
    tool; None when neither is asked for."""
    if b.tool_call:
        arguments = b.tool_call.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        name = b.tool_call["name"]
        return {
            "id": b.tool_call.get("id", "call_1"),
            "type": "function",
            "function": {"name": name, "arguments": text},
        }
    tools = body.get("tools") or []
    if not b.tool_calls or not tools:
        return None
    name = (tools[0].get("function") or {}).get("name", "")
    return {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": b.tool_arguments}}


async def _chunks(
    base: dict[str, Any],
    pieces: list[str],
    usage: dict[str, Any] | None,
    b: Behaviour,
    n: int = 1,
    call: dict[str, Any] | None = None,
) -> AsyncGenerator[bytes | None]:
    """Yield the SSE byte events of one stream, sleeping as the behaviour asks; None means: cut the connection.
    With `n > 1` every chunk carries each choice, the last piece of choice j ending in ` #j`."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, final: bool = False) -> dict[str, Any]:
        choices = [
            {"index": j, "delta": {**delta, "content": delta["content"] + _nth(j)} if final else delta}
            | {"finish_reason": finish_reason}
            for j in range(n)
        ]
        return {**base, "object": "chat.completion.chunk", "choices": choices}

    fingerprint = {k: v for k, v in base.items() if k == "system_fingerprint"}
    if b.fingerprint_on == "usage":
        base = {k: v for k, v in base.items() if k != "system_fingerprint"}
    await asyncio.sleep(b.delay_first_chunk)
    if call is not None:
        args = call["function"]["arguments"]
        head = {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"]}}
        yield _sse(
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{**head, "function": {**head["function"], "arguments": ""}}],
                }
            )
        )
        for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
            yield _sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        yield _sse(chunk({}, "tool_calls"))
        if usage is not None:
            yield _sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"
        return
    yield _sse(chunk({"role": "assistant", "content": ""}))
    if b.fingerprint_on == "first":
        base = {k: v for k, v in base.items() if k != "system_fingerprint"}
    for piece in split_reply(b.reasoning, b.reasoning_chunks) if b.reasoning else ():
        await asyncio.sleep(b.reasoning_delay)
        yield _sse(chunk({b.reasoning_field: piece}))
    # Position i is the i-th content chunk; position len(pieces) is the finish chunk.
    for i in range(len(pieces) + 1):
        if b.malformed and i == min(b.malformed_after, len(pieces)):
            yield b'data: {"id": "broken", "choices": [\n\n'
        if b.cut_after is not None and i == min(b.cut_after, len(pieces)):
            yield None
            return
        if b.stall_after is not None and i == min(b.stall_after, len(pieces)):
            await asyncio.sleep(b.stall_seconds)
        await asyncio.sleep(b.chunk_delay)
        if i < len(pieces):
            yield _sse(chunk({"content": pieces[i]}, final=i == len(pieces) - 1))
    last = chunk({}, b.finish_reason)
    if usage is not None and b.usage_in_last_chunk:
        last["usage"] = usage
    yield _sse(last)
    if usage is not None and not b.usage_in_last_chunk:
        yield _sse({**base, **fingerprint, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    if not b.no_done:
        yield b"data: [DONE]\n\n"


async def _sse_all(events: Iterator[dict[str, Any]], b: Behaviour) -> AsyncGenerator[bytes | None]:
    """A legacy completions stream as SSE, paced like a chat stream."""
    await asyncio.sleep(b.delay_first_chunk)
    for event in events:
        await asyncio.sleep(b.chunk_delay)
        yield _sse(event)
    yield b"data: [DONE]\n\n"


def _sse(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
