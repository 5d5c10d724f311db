"""A vLLM twin on a real loopback socket: the OpenAI chat API plus `/metrics` in vLLM's exposition format, whose
values come from the twin's real state.

It serves `capacity` calls at once; the rest queue (`vllm:num_requests_waiting` rises and their TTFT grows by the
time they wait). A call holds `prompt + completion` tokens of KV cache while it runs (`vllm:kv_cache_usage_perc`
= held / `kv_tokens`). A prompt whose first `prefix_chars` characters were seen before is a prefix-cache hit: its
prefill takes `cached_prefill` instead of `prefill`, and it counts in `vllm:prefix_cache_hits_total`. Time per
output token is `per_token`.

For tests: `override(waiting=9)` pins a reported figure (the state underneath is unchanged), `hold()` keeps
every admitted call before its first token until `release()`, and `metrics_mode` makes `/metrics` `dead` (500),
`slow` (answers after `metrics_delay` seconds), `garbage` (unparseable) or `ok`. The exposition is written by
prometheus_client, the library vLLM itself uses, with vLLM's names and `model_name`/`engine` labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import socket
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from tests.support.loop_server import LoopServer
from tests.support.upstream import CHAT_PATH, count_prompt_tokens


@dataclass(slots=True)
class TwinSpec:
    """How the twin behaves; every figure can be changed while it runs."""

    model: str = "twin-model"
    capacity: int = 4
    prefill: float = 0.02  # seconds to the first token for a cold prompt
    cached_prefill: float = 0.002  # ... for a prompt whose prefix is cached
    per_token: float = 0.001  # seconds per further output token
    completion_tokens: int = 4
    kv_tokens: int = 100_000
    prefix_chars: int = 2000
    prefix_cache_entries: int = 256
    tokens_per_chunk: int = 1  # output tokens per streamed chunk (a benchmark sends several at once)


class VllmTwin(LoopServer):
    """A vLLM-shaped server whose `/metrics` tells the truth about its queue, KV use and prefix cache."""

    def __init__(self, name: str, spec: TwinSpec | None = None, port: int = 0) -> None:
        self.name, self.spec, self._port = name, spec or TwinSpec(), port
        self.running = 0
        self.waiting = 0
        self.kv_held = 0
        self.served = 0
        self.hits = 0
        self.queries = 0
        self.ttfts: list[float] = []
        self.sessions: list[str] = []  # the X-Session-Id of each call served, in order
        self.overrides: dict[str, float] = {}
        self.metrics_mode = "ok"
        self.metrics_delay = 5.0
        self.scrapes = 0
        self._cache: OrderedDict[str, None] = OrderedDict()
        self._slots: asyncio.Semaphore | None = None
        self._gate: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, name: str, spec: TwinSpec | None = None) -> Iterator[Self]:
        with cls(name, spec).threaded(f"vllm-twin-{name}") as twin:
            yield twin

    def override(self, **values: float) -> None:
        """Report these figures on /metrics (running, waiting, kv_usage) instead of the real ones; none: clear."""
        self.overrides = dict(values)

    def hold(self) -> None:
        """Admitted calls wait before their first token until `release()` (thread-safe)."""
        self._call(lambda: self._gate.clear() if self._gate else None)

    def release(self) -> None:
        self._call(lambda: self._gate.set() if self._gate else None)

    def _call(self, fn: Any) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("twin not started")
        done = asyncio.run_coroutine_threadsafe(_run(fn), loop)
        done.result(timeout=5)

    async def _start(self) -> None:
        if self._runner is not None:
            return
        self._slots = asyncio.Semaphore(self.spec.capacity)
        self._gate = asyncio.Event()
        self._gate.set()
        app = web.Application()
        app.router.add_post(CHAT_PATH, self._chat)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        await web.SockSite(runner, sock).start()
        self._port = sock.getsockname()[1]
        self._runner = runner

    async def _stop(self) -> None:
        runner, self._runner = self._runner, None
        if self._gate is not None:
            self._gate.set()
        if runner is not None:
            await runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="")

    def exposition(self) -> bytes:
        """The /metrics page for the current state, in vLLM's names."""
        registry = CollectorRegistry()
        labels = {"engine": "0", "model_name": self.spec.model}
        names = list(labels)
        figures = {
            "running": float(self.running),
            "waiting": float(self.waiting),
            "kv_usage": min(1.0, self.kv_held / self.spec.kv_tokens),
            **self.overrides,
        }
        for metric, key, doc in (
            ("vllm:num_requests_running", "running", "Number of requests in model execution batches."),
            ("vllm:num_requests_waiting", "waiting", "Number of requests waiting to be processed."),
            ("vllm:kv_cache_usage_perc", "kv_usage", "KV-cache usage. 1 means 100 percent usage."),
        ):
            Gauge(metric, doc, names, registry=registry).labels(**labels).set(figures[key])
        hits = Counter(
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens.",
            names,
            registry=registry,
        )
        queries = Counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            names,
            registry=registry,
        )
        hits.labels(**labels).inc(self.hits)
        queries.labels(**labels).inc(self.queries)
        return generate_latest(registry)

    async def _metrics(self, request: web.Request) -> web.Response:
        self.scrapes += 1
        if self.metrics_mode == "dead":
            return web.Response(status=500, text="engine metrics unavailable")
        if self.metrics_mode == "slow":
            await asyncio.sleep(self.metrics_delay)
        if self.metrics_mode == "garbage":
            return web.Response(text="vllm:num_requests_waiting{model_name= 3 4 5\n")
        return web.Response(body=self.exposition(), content_type="text/plain")

    def _prefix_hit(self, messages: list[Any]) -> bool:
        text = "".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        key = hashlib.blake2b(text[: self.spec.prefix_chars].encode(), digest_size=8).hexdigest()
        hit = key in self._cache
        self._cache[key] = None
        self._cache.move_to_end(key)
        while len(self._cache) > self.spec.prefix_cache_entries:
            self._cache.popitem(last=False)
        return hit

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("model") != self.spec.model:
            return web.json_response({"error": {"message": f"model {body.get('model')!r} not served"}}, status=404)
        messages = body.get("messages") or []
        prompt_tokens = count_prompt_tokens(messages)
        completion = int(body.get("max_tokens") or self.spec.completion_tokens)
        completion = min(completion, self.spec.completion_tokens)
        arrived = time.perf_counter()
        assert self._slots is not None and self._gate is not None
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        held = prompt_tokens + completion
        self.running += 1
        self.kv_held += held
        try:
            await self._gate.wait()
            hit = self._prefix_hit(messages)
            self.queries += prompt_tokens
            self.hits += prompt_tokens if hit else 0
            await asyncio.sleep(self.spec.cached_prefill if hit else self.spec.prefill)
            ttft = time.perf_counter() - arrived
            self.ttfts.append(ttft)
            self.sessions.append(request.headers.get("x-session-id", ""))
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": prompt_tokens if hit else 0},
            }
            reply = " ".join(["[" + self.name + "]", *["tok"] * (completion - 1)])
            if body.get("stream"):
                return await self._stream(request, reply, completion, usage)
            await asyncio.sleep(self.spec.per_token * (completion - 1))
            self.served += 1
            return web.json_response(
                {
                    "id": f"chatcmpl-{self.name}-{next(self._ids)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": self.spec.model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                },
                headers={"x-upstream-name": self.name},
            )
        finally:
            self.running -= 1
            self.kv_held -= held
            self._slots.release()

    async def _stream(self, request: web.Request, reply: str, tokens: int, usage: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "x-upstream-name": self.name})
        await resp.prepare(request)
        model = self.spec.model
        base = {"id": f"chatcmpl-{self.name}-{next(self._ids)}", "object": "chat.completion.chunk", "model": model}
        words = reply.split(" ")
        step = max(1, self.spec.tokens_per_chunk)
        for i in range(0, len(words), step):
            if i:
                await asyncio.sleep(self.spec.per_token * step)
            delta = {"content": (" " if i else "") + " ".join(words[i : i + step])}
            await resp.write(_sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
        await resp.write(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        await resp.write(_sse({**base, "choices": [], "usage": usage}))
        await resp.write(b"data: [DONE]\n\n")
        self.served += 1
        return resp


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


async def _run(fn: Any) -> None:
    fn()
