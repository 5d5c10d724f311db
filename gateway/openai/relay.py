"""The SSE relay: a raw ASGI response that forwards upstream chunks as they arrive, never buffering.

Headers are held back until the upstream commits (its first meaningful chunk) so that failures before then
still get a real HTTP status; if that takes longer than the keep-alive interval, the 200 goes out and SSE
comment keep-alives (never `data:` lines) are sent until the first chunk. After the first byte, an upstream
failure ends the stream with one OpenRouter-style error chunk and `[DONE]`. A client that goes away cancels
the relay, which closes the upstream request at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from gateway.errors import from_routing
from gateway.openai.formats import DONE, ChatFormat, Identity, sse
from routing.call import Call
from routing.errors import RoutingError, UpstreamError
from routing.stream import UpstreamStream

log = logging.getLogger("gateway.stream")
KEEPALIVE = b": keep-alive\n\n"
Finish = Callable[[int, str], Awaitable[None]]


class ClientGone(Exception):
    """The client closed the connection."""


class StreamRelay:
    """Relays one committed (or failing) upstream stream to one client."""

    def __init__(
        self,
        opener: Callable[[], Awaitable[UpstreamStream]],
        call: Call,
        fmt: ChatFormat,
        who: Callable[[UpstreamStream | None], Identity],
        usage: Callable[[], dict[str, Any] | None],
        finish: Finish,
        keepalive: float,
        headers: Callable[[UpstreamStream | None], list[tuple[bytes, bytes]]],
    ) -> None:
        self.opener, self.call, self.fmt, self.who, self.usage = opener, call, fmt, who, usage
        self.finish, self.keepalive, self.headers = finish, keepalive, headers
        self._started = False
        self._done = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        main = asyncio.current_task()
        assert main is not None
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    if not self._done:
                        main.cancel()
                    return

        watcher = asyncio.create_task(watch())
        try:
            await self._relay(send)
        except (asyncio.CancelledError, ClientGone) as exc:
            if isinstance(exc, asyncio.CancelledError) and not gone.is_set():
                # cancelled by the server (shutdown grace period over), not by the client: still log the call
                self.call.cancelled = True
                await asyncio.shield(self.finish(503, "stream cancelled: the gateway was shutting down"))
                raise
            while main.cancelling():
                main.uncancel()
            self.call.cancelled = True
            await self.finish(499, "client disconnected before the stream finished")
        except Exception:
            log.exception("stream relay failed (request %s)", self.call.request_id)
            await self.finish(500, "internal error while relaying the stream")
            raise
        finally:
            self._done = True
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _send(self, send: Send, message: Message) -> None:
        try:
            await send(message)
        except OSError as exc:
            raise ClientGone() from exc

    async def _start(self, send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._started = True
        await self._send(send, {"type": "http.response.start", "status": status, "headers": headers})

    async def _body(self, send: Send, data: bytes, more: bool = True) -> None:
        await self._send(send, {"type": "http.response.body", "body": data, "more_body": more})

    async def _relay(self, send: Send) -> None:
        opening = asyncio.ensure_future(self.opener())
        try:
            while True:
                done, _ = await asyncio.wait({opening}, timeout=self.keepalive)
                if done:
                    break
                if not self._started:
                    await self._start(send, 200, self.headers(None))
                await self._body(send, KEEPALIVE)
        except BaseException:
            await _abandon(opening)
            raise
        try:
            upstream = opening.result()
        except RoutingError as exc:
            await self._fail_before_commit(send, exc)
            return
        try:
            await self._forward(send, upstream)
        finally:
            await upstream.aclose()

    async def _fail_before_commit(self, send: Send, exc: RoutingError) -> None:
        error = from_routing(exc)
        await self.finish(error.status, error.message)
        if not self._started:
            headers = [
                (b"content-type", b"application/json"),
                *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
            ]
            await self._start(send, error.status, headers)
            await self._body(send, orjson.dumps(error.body()), more=False)
            return
        who = self.who(None)
        await self._body(send, sse(self.fmt.error_chunk(who, error.code or "upstream_error", error.message)))
        await self._body(send, DONE, more=False)

    async def _forward(self, send: Send, upstream: UpstreamStream) -> None:
        who = self.who(upstream)
        if not self._started:
            await self._start(send, 200, self.headers(upstream))
        fmt = self.fmt
        try:
            async with contextlib.aclosing(upstream.batches()) as batches:
                async for batch in batches:
                    # what arrived in one upstream read leaves in one write; nothing waits for more
                    body = b"".join([sse(shaped) for chunk in batch if (shaped := fmt.chunk(chunk, who)) is not None])
                    if body:
                        await self._body(send, body)
        except UpstreamError as exc:
            status = 504 if exc.kind == "timeout" else 502
            await self.finish(status, f"stream interrupted: {exc.message}")
            code = "upstream_timeout" if status == 504 else "upstream_error"
            error = sse(fmt.error_chunk(who, code, f"upstream stream interrupted: {exc.message}"))
            await self._body(send, error + DONE, more=False)
            return
        usage = self.usage()
        await self.finish(200, "")
        tail = DONE if usage is None else sse(fmt.usage_chunk(usage, who)) + DONE
        await self._body(send, tail, more=False)


async def _abandon(opening: asyncio.Future[UpstreamStream]) -> None:
    """Stop an opening attempt; if it had already committed, close that stream too."""
    if not opening.done():
        opening.cancel()
    with contextlib.suppress(BaseException):
        stream = await opening
        await stream.aclose()
