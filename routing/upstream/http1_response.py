"""The response side of routing/http1.py: one connection's protocol, and the response it is reading.

A response is read as it arrives (`read_nowait`, `readany`, `read`); the connection goes back to its pool when the
exchange ended cleanly, and a response released before its end reads its tail for a moment first (`release`).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from typing import Any, Protocol

import httptools


class PoolSide(Protocol):
    """What a connection needs of its pool."""

    lingering: set[Connection]

    def done_with(self, conn: Connection, reuse: bool) -> None: ...


_HIGH_WATER = 1 << 20  # pause reading the socket past this many buffered body bytes
# A response released before its end (a stream stopped at its usage chunk, before `[DONE]`) keeps reading this
# long for the rest, so the connection can be pooled rather than closed and reopened for the next call.
_LINGER_S = 1.0
_LINGER_BYTES = 64 * 1024


class HttpError(Exception):
    """The exchange failed: the connection broke, or the bytes were not a valid HTTP response."""


class ConnectError(HttpError):
    """No connection could be made (refused, unreachable, DNS, TLS handshake)."""

    def __init__(self, message: str, os_error: OSError | None = None) -> None:
        super().__init__(message)
        self.os_error = os_error


class Headers(dict[str, str]):
    """Response headers under lower-case names, looked up case-insensitively; repeated ones joined by ", "."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class Connection(asyncio.Protocol):
    """One socket. It carries one exchange at a time; `response` is the one in flight."""

    def __init__(self, pool: PoolSide, key: tuple[str, str, int]) -> None:
        self.pool, self.key = pool, key
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def begin(self, response: Response) -> None:
        self.response = response
        self._parser = httptools.HttpResponseParser(response)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            response.fail(HttpError("upstream switched protocols"))
            self.close()
        except httptools.HttpParserError as exc:
            response.fail(HttpError(f"malformed HTTP response ({exc})"))
            self.close()

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


class Response:
    """Status and headers once `Pool.request` returns; the body is read with `read`, `readany`, `read_nowait`."""

    def __init__(self, conn: Connection, deadline: float) -> None:
        self._conn = conn
        self.deadline = deadline  # loop time by which the whole exchange must end
        self.status = 0
        self.headers = Headers()
        self.keep_alive = False
        self._got_headers = False
        self._headers_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: Any = None
        self._released = False
        self._draining: asyncio.TimerHandle | None = None
        self._drained_bytes = 0

    # --- httptools callbacks -------------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self.headers
        dict.__setitem__(headers, key, f"{headers[key]}, {text}" if key in headers else text)

    def on_headers_complete(self) -> None:
        self.status = self._conn._parser.get_status_code()
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib, detected from the header
        elif encoding not in ("", "identity"):
            self.fail(HttpError(f"unsupported content-encoding {encoding!r}"))
            return
        self._got_headers = True
        if not self._headers_done.done():
            self._headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._draining is not None:
            self._drained_bytes += len(body)
            if self._drained_bytes > _LINGER_BYTES:
                self._end_drain(reuse=False)
            return
        if self._decoder is not None:
            body = self._decoder.decompress(body)
            if not body:
                return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused:
            self._paused = True
            self._conn.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail)
        self._complete = True
        self.keep_alive = self._conn._parser.should_keep_alive()
        if self._draining is not None:
            self._end_drain(reuse=self.keep_alive and not self._conn.closed)
            return
        self._wake()

    # --- connection events ---------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        if self._draining is not None:
            self._end_drain(reuse=False)
            return
        if self._error is None and not self._complete:
            self._error = exc
        if not self._headers_done.done():
            self._headers_done.set_exception(exc)
            self._headers_done.exception()  # retrieved: an abandoned request must not log "never retrieved"
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._complete:
            return
        if self._got_headers and self._reads_until_close():
            self.on_message_complete()  # a body delimited by the connection's end is complete now
            return
        name = type(exc).__name__ if exc else "closed by upstream"
        self.fail(HttpError(f"connection lost ({name})"))

    def _reads_until_close(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get("transfer-encoding", "")

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- reading -------------------------------------------------------------------------------------------
    async def wait_headers(self) -> None:
        await self._headers_done

    def at_eof(self) -> bool:
        return self._complete and not self._chunks

    def read_nowait(self) -> bytes:
        """What is buffered now (b"" when nothing is); raises the exchange's error once the buffer is empty."""
        if not self._chunks:
            if self._error is not None:
                raise self._error
            return b""
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._conn.resume_reading()
        return data

    async def readany(self) -> bytes:
        """The next bytes of the body, waiting for them; b"" at its end."""
        while not self._chunks and not self._complete and self._error is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.read_nowait()

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (or its first `limit` bytes)."""
        parts: list[bytes] = []
        size = 0
        while True:
            data = await self.readany()
            if not data:
                break
            parts.append(data)
            size += len(data)
            if limit is not None and size >= limit:
                break
        body = b"".join(parts)
        return body if limit is None else body[:limit]

    # --- ending --------------------------------------------------------------------------------------------
    def release(self) -> None:
        """Done with the response: the connection goes back to the pool if the exchange ended cleanly."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        if not self._complete and self._error is None and not conn.closed and self._got_headers:
            self._chunks.clear()
            if self._paused:
                self._paused = False
                conn.resume_reading()
            self._draining = asyncio.get_running_loop().call_later(_LINGER_S, self._end_drain, False)
            conn.pool.lingering.add(conn)
            return
        conn.response = None
        conn.pool.done_with(conn, self._complete and self._error is None and self.keep_alive and not conn.closed)

    def _end_drain(self, reuse: bool) -> None:
        timer, self._draining = self._draining, None
        if timer is None:
            return
        timer.cancel()
        self._conn.response = None
        self._conn.pool.done_with(self._conn, reuse)

    def close(self) -> None:
        """Abandon the response and its connection (a half-read body cannot be reused)."""
        if self._released:
            return
        self._released = True
        self._conn.response = None
        self._conn.pool.done_with(self._conn, reuse=False)
