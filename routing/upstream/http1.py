"""A lean pooled HTTP/1.1 client for upstream calls: asyncio protocols and httptools' response parser.

aiohttp's ClientSession spends about 275 us of Python per request on a loopback keep-alive connection, where
the same exchange over a bare protocol takes about 110 us (bench/RESULTS.md, "upstream client"); on the hot
path that difference is most of the gateway's added latency. This client does only what the gateway needs:
keep-alive pools per origin, TLS through the standard library, a request with a body, the response as status,
headers and body bytes read as they arrive (content-length, chunked, or until close), gzip/deflate decoding,
read-side flow control, and no retries, redirects, cookies or proxies (the executor is the one retry loop and
upstreams are configured explicitly).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import urlsplit

from routing.upstream.http1_response import ConnectError, Connection, Headers, HttpError, Response

__all__ = ["ConnectError", "Headers", "HttpError", "Pool", "Response"]


class Pool:
    """Keep-alive connections per (scheme, host, port), most recently used first."""

    def __init__(self, keepalive: float = 30.0, limit: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._keepalive = keepalive
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None  # connections in use, all origins
        self.lingering: set[Connection] = set()  # released early, reading the rest of their response
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._ssl = ssl_context
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        *,
        connect_timeout: float,
        total_timeout: float,
    ) -> Response:
        """Send the request and wait for the response's status and headers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + total_timeout
        scheme, host, port, target, host_header = _target(url)
        if self._slots is not None:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            except TimeoutError:
                raise ConnectError("no free upstream connection (UPSTREAM_POOL_SIZE)") from None
        try:
            conn = await self._acquire((scheme, host, port), connect_timeout)
        except BaseException:
            self._free_slot()
            raise
        response = Response(conn, deadline)
        conn.begin(response)
        assert conn.transport is not None
        conn.transport.write(_encode(method, target, host_header, headers, body))
        try:
            await response.wait_headers()
        except BaseException:
            response.close()
            raise
        return response

    def _free_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def done_with(self, conn: Connection, reuse: bool) -> None:
        """A response let go of its connection: pool it when `reuse`, else close it."""
        self._free_slot()
        self.lingering.discard(conn)
        if reuse:
            self._put_back(conn)
        else:
            conn.close()

    def _put_back(self, conn: Connection) -> None:
        if self._closed:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)

    async def close(self) -> None:
        self._closed = True
        for conn in list(self.lingering):
            conn.close()
        self.lingering.clear()
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _acquire(self, key: tuple[str, str, int], connect_timeout: float) -> Connection:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            # A connection idle past the keep-alive window may have been closed by the server in the meantime.
            if not conn.closed and now - conn.idle_since < self._keepalive:
                return conn
            conn.close()
        scheme, host, port = key
        context = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await asyncio.get_running_loop().create_connection(
                    lambda: Connection(self, key), host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            raise ConnectError(f"connect timeout after {connect_timeout:g}s") from None
        except ssl.SSLError as exc:
            raise ConnectError(f"TLS handshake failed ({exc.reason or type(exc).__name__})", exc) from None
        except OSError as exc:
            raise ConnectError(exc.strerror or type(exc).__name__, exc) from None
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


def _target(url: str) -> tuple[str, str, int, str, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"unsupported URL scheme {scheme!r}")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname if port == default else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:  # an IPv6 literal goes back in brackets in the Host header
        host_header = f"[{parts.hostname}]" if port == default else f"[{parts.hostname}]:{port}"
    return scheme, parts.hostname, port, target, host_header


def _encode(method: str, target: str, host: str, headers: dict[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    seen = set()
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise HttpError(f"header {name!r} holds a line break")
        seen.add(name.lower())
        lines.append(f"{name}: {value}")
    if "accept-encoding" not in seen:
        lines.append("Accept-Encoding: gzip, deflate")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head
