"""A minimal Starlette app that relays a streamed upstream reply, with one of two SSE response layers.

It isolates the other choice the gateway made on its streaming path: the response that writes the events.
Both relays open the upstream stream with the gateway's own client (`routing/upstream/http1.py`) and split
each upstream read into its SSE events the same way; they differ only in how the events reach uvicorn:
- `raw`: a raw ASGI response in the style of `gateway/openai/relay.py`: the events of one upstream read leave in
  one `http.response.body` message (`more_body=True`) as soon as they arrive, then an empty closing message.
- `sse-starlette`: sse-starlette's `EventSourceResponse` fed by an async generator yielding one
  `ServerSentEvent(data=...)` per upstream event (the library's documented use; it sends one message per event
  and runs its ping, disconnect and shutdown tasks in an anyio task group).
- `sse-starlette-bytes`: the same response fed pre-encoded event bytes, to separate the library's event
  encoding from its response machinery.
Served by uvicorn (uvloop + httptools), one worker: `python -m bench.sse_stacks --relay raw --port P --upstream URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from routing.upstream.http1 import Pool
from routing.upstream.http1 import Response as UpstreamResponse

RELAYS = ("raw", "sse-starlette", "sse-starlette-bytes")
_HEADERS = {"content-type": "application/json", "authorization": "Bearer bench-key", "accept": "text/event-stream"}
_SSE_HEADERS = [  # as gateway/openai/formats.py sends them
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def upstream_batches(resp: UpstreamResponse) -> AsyncIterator[list[bytes]]:
    """The `data:` payloads of each upstream read, in the groups they arrived in; releases the response."""
    pending = b""
    try:
        while data := await resp.readany():
            pending = pending + data if pending else data
            *events, pending = pending.split(b"\n\n")
            batch = [line[6:] for event in events for line in event.split(b"\n") if line.startswith(b"data: ")]
            if batch:
                yield batch
    finally:
        resp.release()


def _frame(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


class RawRelay:
    """Our style: one ASGI body message per upstream read, sent as it arrives; a client that leaves cancels it."""

    def __init__(self, resp: UpstreamResponse) -> None:
        self.resp = resp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        main = asyncio.current_task()
        assert main is not None
        done = False

        async def watch() -> None:  # the gateway relay's disconnect watcher, one task per stream
            while (await receive())["type"] != "http.disconnect":
                pass
            if not done:
                main.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": self.resp.status, "headers": _SSE_HEADERS})
            async with contextlib.aclosing(upstream_batches(self.resp)) as batches:
                async for batch in batches:
                    body = b"".join(map(_frame, batch))
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            done = True
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def sse_starlette_response(resp: UpstreamResponse, encoded: bool) -> Response:
    """sse-starlette's EventSourceResponse over an async generator of the upstream's events."""
    from sse_starlette import EventSourceResponse, ServerSentEvent

    async def events() -> AsyncIterator[ServerSentEvent | bytes]:
        async for batch in upstream_batches(resp):
            for payload in batch:
                yield _frame(payload) if encoded else ServerSentEvent(data=payload.decode(), sep="\n")

    return EventSourceResponse(events(), status_code=resp.status, sep="\n")


def create_app(relay: str, upstream: str) -> Starlette:
    """The relay app; the upstream pool lives in the lifespan."""
    if relay not in RELAYS:
        raise ValueError(f"--relay must be one of {', '.join(RELAYS)}, got {relay!r}")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = Pool()
        try:
            yield
        finally:
            await app.state.pool.close()

    async def chat(request: Request) -> Response | RawRelay:
        pool: Pool = request.app.state.pool
        resp = await pool.request("POST", upstream, _HEADERS, await request.body(), connect_timeout=5, total_timeout=30)
        if relay == "raw":
            return RawRelay(resp)
        return sse_starlette_response(resp, encoded=relay == "sse-starlette-bytes")

    async def ready(request: Request) -> Response:
        return Response(b"ok", 200)

    routes = [Route("/v1/chat/completions", chat, methods=["POST"]), Route("/ready", ready)]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description="minimal Starlette SSE relay for the streamed-stack comparison")
    parser.add_argument("--relay", choices=RELAYS, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="full URL of the upstream chat completions endpoint")
    args = parser.parse_args()
    import uvicorn

    app = create_app(args.relay, args.upstream)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
