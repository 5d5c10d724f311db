"""Steady open-loop traffic for `make chaos` / `make soak`: calls at a fixed rate (a slow answer never delays the
next call), streamed and not, each with a unique id in the body's `user` so its call-log row can be found."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable

import aiohttp
import orjson

from bench.chaos_measure import CallResult

PROMPT = [{"role": "user", "content": "Say hello to the chaos harness."}]


def body(model: str, cid: str, stream: bool) -> bytes:
    payload: dict[str, object] = {"model": model, "messages": PROMPT, "max_tokens": 16, "user": cid}
    if stream:
        payload["stream"] = True
    return orjson.dumps(payload)


async def one_call(
    http: aiohttp.ClientSession, url: str, call: CallResult, leave_after_first_chunk: bool = False
) -> CallResult:
    """Make one call and fill in how it ended; never raises (but for cancellation)."""
    try:
        async with http.post(
            url,
            data=body(call.model, call.cid, call.stream),
            headers={"content-type": "application/json", "authorization": "Bearer chaos"},
        ) as resp:
            call.status = resp.status
            call.deployment = resp.headers.get("x-gateway-deployment", "")
            if not call.stream or resp.status != 200:
                raw = await resp.read()
                call.ok = resp.status == 200 and b'"choices"' in raw
                if not call.ok:
                    call.error = f"http {resp.status}: {raw[:160].decode(errors='replace')}"
            else:
                done = errored = False
                async for line in resp.content:
                    if leave_after_first_chunk and line.startswith(b"data: {"):
                        call.error = "left on purpose"
                        return call
                    if line.startswith(b"data: [DONE]"):
                        done = True
                    elif line.startswith(b"data: {") and (b'"error":{' in line or b'"error": {' in line):
                        # OpenAI's shape first, or OpenRouter's mid-stream error chunk (finish_reason "error")
                        errored = True
                        call.error = line[:160].decode(errors="replace").strip()
                call.ok = done and not errored
                if not done and not call.error:
                    call.error = "stream ended without [DONE]"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        call.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        call.end = time.time()
    return call


class Traffic:
    """Calls at `rate` per second through `url` until stopped. `pick(n)` gives the model and whether call n
    streams; every result lands in `calls`."""

    def __init__(self, url: str, rate: float, pick: Callable[[int], tuple[str, bool]], prefix: str = "c") -> None:
        self.url, self.rate, self.pick, self.prefix = url, rate, pick, prefix
        self.calls: list[CallResult] = []
        self._tasks: set[asyncio.Task[CallResult]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.http: aiohttp.ClientSession | None = None
        self._ids = itertools.count()

    async def start(self) -> None:
        # a fresh connection per call: the balancer picks a replica per connection, and no keep-alive race
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        self.http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=40))
        self._runner = asyncio.create_task(self._run())

    def launch(self, model: str, stream: bool, storm: bool = False) -> CallResult:
        """One extra call now (a storm call leaves after its first chunk)."""
        assert self.http is not None
        n = next(self._ids)
        call = CallResult(f"{'s' if storm else self.prefix}{n}", model, stream, time.time(), storm=storm)
        self.calls.append(call)
        task = asyncio.create_task(one_call(self.http, self.url, call, leave_after_first_chunk=storm))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def _run(self) -> None:
        began = time.perf_counter()
        for n in itertools.count():
            delay = began + n / self.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            model, stream = self.pick(n)
            self.launch(model, stream)

    def in_flight(self) -> int:
        return len(self._tasks)

    async def stop(self) -> None:
        """Stop sending and wait for every call in flight to end."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=60)
        if self.http is not None:
            await self.http.close()
