"""The response side of routing/upstream/http1.py: the response a connection is reading, and the client's errors.

A response is read as it arrives (`read_nowait`, `readany`, `read`); the connection goes back to its pool when the
exchange ended cleanly, and a response released before its end reads its tail for a moment first (`release`).
Interim responses (1xx but 101) are skipped, as h11/httpcore and aiohttp do; parsing stops at the end of the final
one, so bytes after it never become part of it or of the next exchange (the connection is closed instead).
Memory is bounded by `Caps`: the header block and its field count, a whole body read with `read()`, the part of an
error body kept, and what one network read may decode to (gzip and deflate are inflated with `max_length`, so a
bomb fails before it is unpacked).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

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


class LimitExceeded(HttpError):
    """The response passed one of the client's caps (`Caps`); the message names the cap."""


class TrailingBytes(Exception):
    """Raised inside the parser when a second message starts after the response ended: stop, close the connection."""


@dataclass(frozen=True, slots=True)
class Caps:
    """What a response may make the client hold: its header block (bytes, also the cap on trailers, and fields), a
    body read whole, one read's decoded output, and the decoded part of an error body (status >= 400) that is kept."""

    header_bytes: int = 64 * 1024
    body_bytes: int = 32 * 1024 * 1024
    decoded_read_bytes: int = 8 * 1024 * 1024
    header_count: int = 100  # as http.client's _MAXHEADERS and Envoy's max_headers_count; aiohttp allows 128
    error_body_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        caps = (self.header_bytes, self.body_bytes, self.decoded_read_bytes, self.header_count, self.error_body_bytes)
        if min(caps) < 1:
            raise ValueError("Caps: every cap must be >= 1")


class ConnectionSide(Protocol):
    """What a response needs of the connection it is read from (routing/upstream/http1_connection.py)."""

    closed: bool
    caps: Caps

    def status_code(self) -> int: ...

    def should_keep_alive(self) -> bool: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def linger(self) -> None:
        """Released early: keep reading the rest of the response for a moment."""

    def finish(self, reuse: bool) -> None:
        """The exchange is over: back to the pool when `reuse`, else closed."""


class Headers(dict[str, str]):
    """Response headers under lower-case names, looked up case-insensitively; repeated ones joined by ", "."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class Response:
    """Status and headers once `Pool.request` returns; the body is read with `read`, `readany`, `read_nowait`."""

    def __init__(self, conn: ConnectionSide, deadline: float) -> None:
        self._conn = conn
        self.deadline = deadline  # loop time by which the whole exchange must end
        self.status = 0
        self.headers = Headers()
        self.keep_alive = False
        self.got_headers = False
        self.body_reads = 0  # on_body calls so far: the connection caps reads that carry none (trailers)
        self._headers_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fields = 0
        self._repeated: dict[str, list[str]] | None = None  # repeated fields' values, joined once at the end
        self._interim = False  # in a 1xx response, skipped
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False  # the message ended (decides reuse)
        self._eof = False  # the reader has had all it gets: the message ended, or the kept part of an error body
        self._left: int | None = None  # bytes of an error body still kept
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: Any = None
        self._released = False
        self._draining: asyncio.TimerHandle | None = None
        self._drained_bytes = 0

    # --- httptools callbacks -------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._complete:  # a second message: not part of this exchange, nor of the next one
            raise TrailingBytes

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.got_headers:  # a trailer field: nothing reads them; their bytes are capped by the connection
            return
        self._fields += 1
        if self._fields > self._conn.caps.header_count:
            cap = self._conn.caps.header_count
            raise LimitExceeded(f"response has more than {cap} header fields (max_header_count)")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self.headers
        if dict.__contains__(headers, key):  # collected, not re-joined per field: repeats cost linear time
            repeated = self._repeated
            if repeated is None:
                repeated = self._repeated = {}
            values = repeated.get(key)
            if values is None:
                repeated[key] = [dict.__getitem__(headers, key), text]
            else:
                values.append(text)
        else:
            dict.__setitem__(headers, key, text)

    def on_headers_complete(self) -> None:
        status = self._conn.status_code()
        headers = self.headers
        self._fields = 0
        if status < 200:
            if status == 101:  # the gateway never asks for an upgrade
                raise HttpError("upstream switched protocols (HTTP 101)")
            if status < 100:
                raise HttpError(f"malformed HTTP response (status {status})")
            self._interim = True  # 100 Continue, 103 Early Hints...: the final response follows on this connection
            self._repeated = None
            headers.clear()
            return
        if self._repeated is not None:
            for key, values in self._repeated.items():
                dict.__setitem__(headers, key, ", ".join(values))
            self._repeated = None
        self.status = status
        if status >= 400:
            self._left = self._conn.caps.error_body_bytes
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib, detected from the header
        elif encoding not in ("", "identity"):
            self.fail(HttpError(f"unsupported content-encoding {encoding!r}"))
            return
        self.got_headers = True
        if not self._headers_done.done():
            self._headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body_reads += 1
        if self._draining is not None:
            self._drained_bytes += len(body)
            if self._drained_bytes > _LINGER_BYTES:
                self._end_drain(reuse=False)
            return
        if self._eof:  # past the kept part of an error body
            return
        if self._interim:  # llhttp reads a body for a 1xx other than 100/102/103 that has a Content-Length
            raise HttpError(f"interim response (HTTP {self._conn.status_code()}) with a body")
        left = self._left
        decoder = self._decoder
        if decoder is not None:
            cap = self._conn.caps.decoded_read_bytes
            room = cap - self._buffered
            if left is not None and left <= room:  # an error body: inflate only what is kept
                body = decoder.decompress(body, left)
            else:
                body = decoder.decompress(body, room if room > 0 else 1)  # max_length: a bomb stops here
                if decoder.unconsumed_tail:
                    message = f"response body decodes to more than {cap} bytes at once (max_decoded_read_bytes)"
                    raise LimitExceeded(message)
            if not body:
                return
        if left is not None:
            if len(body) >= left:
                body, self._eof = body[:left], True
            self._left = left - len(body)
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused:
            self._paused = True
            self._conn.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._decoder is not None and not self._eof:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail if self._left is None else tail[: self._left])
        self._complete = self._eof = True
        self.keep_alive = self._conn.should_keep_alive()
        if self._draining is not None:
            self._end_drain(reuse=self.keep_alive and not self._conn.closed)
            return
        self._wake()

    # --- connection events ---------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        if self._draining is not None:
            self._end_drain(reuse=False)
            return
        if self._error is None and not self._eof:
            self._error = exc
        if not self._headers_done.done():
            self._headers_done.set_exception(exc)
            self._headers_done.exception()  # retrieved: an abandoned request must not log "never retrieved"
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._complete:
            return
        if self.got_headers and self._reads_until_close():
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
        return self._eof and not self._chunks

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
        while not self._chunks and not self._eof and self._error is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.read_nowait()

    async def read(self, limit: int | None = None, idle: float | None = None) -> bytes:
        """The whole body (or its first `limit` bytes); past the `body_bytes` cap, decoded, it is a LimitExceeded.
        With `idle`, a wait for the next bytes longer than that, or past `deadline`, is a TimeoutError."""
        cap = self._conn.caps.body_bytes
        parts: list[bytes] = []
        size = 0
        while True:
            data = self.read_nowait()
            if not data:
                if self._eof:
                    break
                if idle is None:
                    data = await self.readany()
                else:
                    async with asyncio.timeout_at(min(asyncio.get_running_loop().time() + idle, self.deadline)):
                        data = await self.readany()
                if not data:
                    break
            parts.append(data)
            size += len(data)
            if limit is not None and size >= limit:
                break
            if size > cap:
                error = LimitExceeded(f"response body exceeds {cap} bytes (max_body_bytes)")
                self._error = error  # so release() closes the connection rather than draining the rest
                raise error
        body = b"".join(parts)
        return body if limit is None else body[:limit]

    # --- ending --------------------------------------------------------------------------------------------
    def release(self) -> None:
        """Done with the response: the connection goes back to the pool if the exchange ended cleanly."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        self._chunks.clear()
        if self._paused:  # also when complete: a pooled connection must read again
            self._paused = False
            conn.resume_reading()
        if not self._complete and self._error is None and not conn.closed and self.got_headers:
            self._draining = asyncio.get_running_loop().call_later(_LINGER_S, self._end_drain, False)
            conn.linger()
            return
        conn.finish(self._complete and self._error is None and self.keep_alive and not conn.closed)

    def _end_drain(self, reuse: bool) -> None:
        timer, self._draining = self._draining, None
        if timer is None:
            return
        timer.cancel()
        self._conn.finish(reuse)

    def close(self) -> None:
        """Abandon the response and its connection (a half-read body cannot be reused)."""
        if self._released:
            return
        self._released = True
        self._conn.finish(reuse=False)
