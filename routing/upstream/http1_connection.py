"""One pooled socket of routing/upstream/http1.py: an asyncio protocol feeding httptools' response parser."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import httptools

from routing.upstream.http1_response import Caps, HttpError, LimitExceeded, Response, TrailingBytes

PoolKey = tuple[str, str, int, str]  # scheme, host, port, proxy ("" when direct): proxied and direct never mix


class PoolSide(Protocol):
    """What a connection needs of its pool."""

    lingering: set[Connection]
    caps: Caps

    def done_with(self, conn: Connection, reuse: bool) -> None: ...


class Connection(asyncio.Protocol):
    """One socket. It carries one exchange at a time; `response` is the one in flight."""

    def __init__(self, pool: PoolSide, key: PoolKey) -> None:
        self.pool, self.key = pool, key
        self.caps = pool.caps
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.idle_since = 0.0
        self.exchanges = 0  # more than one: a reused keep-alive connection
        self.head_bytes = 0  # bytes of this exchange's response seen before its headers completed
        self.tail_bytes = 0  # bytes since the headers in reads that carried no body: trailers, chunk framing
        self._parser: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def begin(self, response: Response) -> None:
        self.response = response
        self.exchanges += 1
        self.head_bytes = self.tail_bytes = 0
        self._parser = httptools.HttpResponseParser(response)

    @property
    def silent(self) -> bool:
        """No byte of the current response has arrived."""
        return self.head_bytes == 0

    def linger(self) -> None:
        self.pool.lingering.add(self)

    def finish(self, reuse: bool) -> None:
        self.response = None
        self.pool.done_with(self, reuse)

    def status_code(self) -> int:
        return int(self._parser.get_status_code())

    def should_keep_alive(self) -> bool:
        return bool(self._parser.should_keep_alive())

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.close()
            return
        try:
            if response.got_headers:
                reads = response.body_reads
                self._parser.feed_data(data)
                if response.body_reads == reads:
                    self._count_tail(len(data))
                elif self.tail_bytes:
                    self.tail_bytes = 0
            else:
                self._feed_head(response, data)
        except httptools.HttpParserUpgrade:
            response.fail(HttpError("upstream switched protocols"))
            self.close()
        except httptools.HttpParserError as exc:
            cause = exc.__context__  # a callback's own error (a cap) reaches us wrapped by the parser
            if not isinstance(cause, TrailingBytes):  # bytes after the response: it stands, the connection goes
                response.fail(cause if isinstance(cause, HttpError) else HttpError(f"malformed HTTP response ({exc})"))
            self.close()
        except HttpError as exc:
            response.fail(exc)
            self.close()

    def _feed_head(self, response: Response, data: bytes) -> None:
        # Only the bytes up to the cap go to the parser while the headers are incomplete, so a header block that
        # never ends cannot grow memory; a read holding the end of the headers and body goes through whole.
        cap = self.caps.header_bytes
        room = cap - self.head_bytes
        if len(data) <= room:
            self.head_bytes += len(data)
            self._parser.feed_data(data)
            return
        self.head_bytes = cap
        self._parser.feed_data(data[:room])
        if not response.got_headers:
            raise LimitExceeded(f"response headers exceed {cap} bytes (max_header_bytes)")
        self._parser.feed_data(data[room:])

    def _count_tail(self, size: int) -> None:
        # Reads after the headers that carry no body byte add up: trailer fields accumulate inside the parser,
        # which would otherwise hold an endless trailer section whole (h11 caps it like the head).
        self.tail_bytes += size
        if self.tail_bytes > self.caps.header_bytes:
            raise LimitExceeded(f"response trailers exceed {self.caps.header_bytes} bytes (max_header_bytes)")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None:
            response.connection_lost(exc)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
