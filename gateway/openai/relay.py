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

import orjson
from starlette.types import Message, Receive, Scope, Send

from gateway.errors import error_headers
from gateway.openai.formats import DONE, SSE_HEADERS, ChatFormat, Identity, identity, sse
from gateway.telemetry.ledger import CallLedger
from routing.errors import GatewayError, RoutingError, UpstreamError
from routing.stream import UpstreamStream

log = logging.getLogger("gateway.stream")
KEEPALIVE = b": keep-alive\n\n"
Opener = Callable[[], Awaitable[UpstreamStream]]


class ClientGone(Exception):
    """The client closed the connection."""


class StreamRelay:
    """Relays one committed (or failing) upstream stream to one client, in `fmt`'s shape, booked by `ledger`."""

    def __init__(
        self, opener: Opener, fmt: ChatFormat, ledger: CallLedger, keepalive: float, include_usage: bool
    ) -> None:
        self.opener, self.fmt, self.ledger, self.keepalive = opener, fmt, ledger, keepalive
        self.include_usage = include_usage
        self._started = False
        self._done = False

    def _who(self) -> Identity:
        call = self.ledger.call
        dep = call.deployment
        return identity(call.request_id, call.model_id, dep.provider if dep else "")

    def _headers(self, committed: bool) -> list[tuple[bytes, bytes]]:
        extra = self.ledger.headers(committed_stream=True) if committed else {}
        return [*SSE_HEADERS, *((k.encode(), v.encode()) for k, v in extra.items())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        main = asyncio.current_task()
        assert main is not None
        gone = asyncio.Event()
        ledger = self.ledger

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
                await ledger.cancelled("stream cancelled: the gateway was shutting down")
                raise
            while main.cancelling():
                main.uncancel()
            ledger.call.cancelled = True
            await ledger.finish(499, "client disconnected before the stream finished")
        except Exception:
            log.exception("stream relay failed (request %s)", ledger.call.request_id)
            await ledger.finish(500, "internal error while relaying the stream")
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
                    await self._start(send, 200, self._headers(committed=False))
                await self._body(send, KEEPALIVE)
        except BaseException:
            await _abandon(opening)
            raise
        try:
            upstream = opening.result()
        except RoutingError as exc:
            await self._fail_before_commit(send, await self.ledger.fail(exc))
            return
        try:
            await self._forward(send, upstream)
        finally:
            await upstream.aclose()

    async def _fail_before_commit(self, send: Send, error: GatewayError) -> None:
        if not self._started:
            headers = [
                (b"content-type", b"application/json"),
                *((k.encode(), v.encode()) for k, v in error_headers(error).items()),
            ]
            await self._start(send, error.status, headers)
            await self._body(send, orjson.dumps(self.fmt.error_body(error)), more=False)
            return
        chunk = self.fmt.error_chunk(self._who(), error.code or "upstream_error", error.message, error.status)
        await self._body(send, sse(chunk) + DONE, more=False)

    async def _forward(self, send: Send, upstream: UpstreamStream) -> None:
        who = self._who()
        if not self._started:
            await self._start(send, 200, self._headers(committed=True))
        fmt = self.fmt
        try:
            async with contextlib.aclosing(upstream.batches()) as batches:
                async for batch in batches:
                    # what arrived in one upstream read leaves in one write; nothing waits for more
                    body = b"".join([sse(shaped) for chunk in batch if (shaped := fmt.chunk(chunk, who)) is not None])
                    if body:
                        await self._body(send, body)
        except UpstreamError as exc:
            await self.ledger.finish(exc.status, f"stream interrupted: {exc.message}")
            error = sse(fmt.error_chunk(who, exc.code, f"upstream stream interrupted: {exc.message}"))
            await self._body(send, error + DONE, more=False)
            return
        usage = self.ledger.usage() if self.include_usage else None
        await self.ledger.finish(200, "")
        fingerprint = self.ledger.call.system_fingerprint
        tail = DONE if usage is None else sse(fmt.usage_chunk(usage, who, fingerprint)) + DONE
        await self._body(send, tail, more=False)


async def _abandon(opening: asyncio.Future[UpstreamStream]) -> None:
    """Stop an opening attempt; if it had already committed, close that stream too."""
    if not opening.done():
        opening.cancel()
    with contextlib.suppress(BaseException):
        stream = await opening
        await stream.aclose()
