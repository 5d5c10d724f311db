"""The HTTP/1.1 protocol `gateway serve` runs: uvicorn's httptools protocol with the request head bounded.

uvicorn 0.54 waits for a request head as long as the client takes to send it, and buffers all of it before any
middleware can see its size. This subclass bounds both where the bytes arrive:

- time: from connection open, or from the end of the previous response, the head must be complete within
  REQUEST_HEAD_TIMEOUT, or the connection closes (with a 408 when a request had begun);
- size: the bytes of a head not yet complete are counted as they arrive; past MAX_HEADER_BYTES (request line and
  framing included) the answer is 431, without reading the rest.

It also answers in OpenAI's error shape where uvicorn answers in plain text: a malformed request line or header
(400) and a request above `limit_concurrency` (503). gateway/edge.py still checks the parsed headers' size, for
servers that do not run this protocol. `gateway serve` binds the limits from its settings (gateway/server.py);
plain uvicorn gets the same protection with `--http gateway.http_protocol:GatewayHttpProtocol`, and the limits
then come from the environment. The overrides follow HttpToolsProtocol of uvicorn 0.54 (pinned in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from gateway.disconnect import DISCONNECT_HOOKS
from gateway.errors import APIError, openai_error

if TYPE_CHECKING:
    from gateway.settings import Settings

LINGER_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """How long a request head may take to arrive (seconds) and how many bytes it may have."""

    timeout: float = 10.0
    max_bytes: int = 32 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadLimits:
        return cls(settings.server.head_timeout, settings.max_header_bytes)


@functools.cache
def limits_from_env() -> HeadLimits:
    """The limits in this process's settings, read once: plain uvicorn builds a protocol per connection."""
    from gateway.settings import Settings

    return HeadLimits.from_settings(Settings.from_env())


def error_body(status: int, message: str, code: str) -> bytes:
    return orjson.dumps(openai_error(APIError(status, message, code=code)))


def refusal(status: int, body: bytes, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole response carrying `body` (OpenAI's error JSON), after which the connection closes."""
    head = [STATUS_LINE[status]]
    for name, value in default_headers:
        head += [name, b": ", value, b"\r\n"]
    head += [b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)]
    return b"".join(head) + body


OVER_CAPACITY = error_body(
    503, "the gateway is at its connection limit (MAX_CONNECTIONS); retry shortly", "too_many_connections"
)


async def over_capacity(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """uvicorn's service_unavailable in OpenAI's shape: the answer to a request above `limit_concurrency`."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(OVER_CAPACITY)),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": OVER_CAPACITY, "more_body": False})


class Lingering(asyncio.Protocol):
    """A refused connection after its answer: what the client still sends is read and dropped until it closes or
    LINGER_SECONDS pass. Closing with its bytes unread would reset the connection, and a reset can destroy the answer
    before the client reads it (RFC 9112 section 9.6; nginx's lingering_close)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = loop.call_later(LINGER_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        """Dropped."""

    def connection_lost(self, exc: Exception | None) -> None:
        self.timer.cancel()


class GatewayHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a deadline and a byte count on each request head, and OpenAI-shaped refusals."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        limits: HeadLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or limits_from_env()
        self.in_head = True  # the bytes arriving now belong to a request head (not a body)
        self.head_bytes = 0  # bytes received for the head in progress
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_head_timer()
        super().connection_lost(exc)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # the call in flight stops (disconnect.py)
            for hook in cast("dict[str, Any]", cycle.scope).get(DISCONNECT_HOOKS, ()):
                hook()

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > self.limits.max_bytes:
                # The head may end inside this piece (the rest being body or the next request): parse it, then
                # refuse only if it did not. So memory holds at most the limit plus one read.
                super().data_received(data)
                if self.in_head and self.head_bytes > self.limits.max_bytes:
                    message = f"request head exceeds {self.limits.max_bytes} bytes"
                    self.refuse(431, message, "request_headers_too_large")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self.in_head, self.head_bytes = False, 0
        self.stop_head_timer()
        super().on_headers_complete()
        cast("dict[str, Any]", self.scope)[DISCONNECT_HOOKS] = []  # ours: see disconnect.py

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head = True  # what follows is the next request's head, even while this one is being answered

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn arms its keep-alive timer exactly when it starts waiting for the next request (not when the
        # connection is closing or a pipelined request is waiting to run): the next head's deadline starts then.
        if self.timeout_keep_alive_task is not None:
            self.start_head_timer()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request line or header httptools cannot parse, in OpenAI's shape."""
        self.refuse(400, msg, "malformed_request")

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # Above limit_concurrency, on_headers_complete hands the request to uvicorn's plain-text 503 app.
        super()._start_asgi_task(cycle, over_capacity if app is service_unavailable else app)

    def start_head_timer(self) -> None:
        self.stop_head_timer()
        self.head_timer = self.loop.call_later(self.limits.timeout, self.head_timed_out)

    def stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.head_bytes:
            self.refuse(408, f"request head not complete within {self.limits.timeout:g} s", "request_timeout")
        elif not self.transport.is_closing():
            self.transport.close()  # nothing of a request arrived: close quietly, as uvicorn's keep-alive does

    def refuse(self, status: int, message: str, code: str) -> None:
        """Answer `status` and close, or only close when the answer could not be the next response on the wire."""
        in_head, self.in_head = self.in_head, False  # an error in a head is the next request's, not the running one's
        self.stop_head_timer()
        if self.transport.is_closing():
            return
        running = self.cycle is not None and not self.cycle.response_complete
        if self.pipeline or (running and (in_head or self.cycle.response_started)):
            # an answer to a later request may not overtake the running one's response, nor land inside it
            self.transport.close()
            return
        self.transport.write(refusal(status, error_body(status, message, code), self.server_state.default_headers))
        if running:
            # the running request's body did not parse and its app still holds the connection: uvicorn's way
            self.transport.close()
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        # Hand the transport over, as uvicorn's websocket upgrade does: leave the server's connection set and
        # stop this protocol's timers; no request of this connection is running, so nothing else refers to it.
        self.connections.discard(self)
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        self.transport.set_protocol(Lingering(self.transport, self.loop))
