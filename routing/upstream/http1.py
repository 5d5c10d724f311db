"""A lean pooled HTTP/1.1 client for upstream calls: asyncio protocols and httptools' response parser.

aiohttp's ClientSession spends about 275 us of Python per request on a loopback keep-alive connection, where
the same exchange over a bare protocol takes about 110 us (bench/RESULTS.md, "upstream client"); on the hot
path that difference is most of the gateway's added latency. This client does only what the gateway needs:
keep-alive pools per origin, TLS through the standard library, a request with a body, the response as status,
headers and body bytes read as they arrive (content-length, chunked, or until close; interim 1xx responses
skipped, bytes after the response never taken as part of it), gzip/deflate decoding, read-side flow control, caps
on what a response may make us hold (`Caps`), forward proxies (`Proxies`), and one retry of a request whose reused
keep-alive connection turned out dead before any response byte. No other retries (the executor is the one retry
loop), no redirects, no cookies.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from urllib.parse import urlsplit

from routing.upstream.dial import dial
from routing.upstream.http1_connection import Connection, PoolKey
from routing.upstream.http1_response import Caps, ConnectError, Headers, HttpError, LimitExceeded, Response
from routing.upstream.proxy import Proxies, Proxy

__all__ = ["Caps", "ConnectError", "Headers", "HttpError", "LimitExceeded", "Pool", "Response"]

_DEFAULT_CAPS = Caps()


class Pool:
    """Keep-alive connections per (scheme, host, port, proxy), most recently used first."""

    def __init__(
        self,
        keepalive: float = 30.0,
        limit: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        *,
        proxies: Proxies | None = None,
        max_header_bytes: int = _DEFAULT_CAPS.header_bytes,
        max_body_bytes: int = _DEFAULT_CAPS.body_bytes,
        max_decoded_read_bytes: int = _DEFAULT_CAPS.decoded_read_bytes,
        max_header_count: int = _DEFAULT_CAPS.header_count,
        max_error_body_bytes: int = _DEFAULT_CAPS.error_body_bytes,
    ) -> None:
        self._keepalive = keepalive
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None  # connections in use, all origins
        self.lingering: set[Connection] = set()  # released early, reading the rest of their response
        self._idle: dict[PoolKey, list[Connection]] = {}
        self._ssl = ssl_context
        self._closed = False
        self.caps = Caps(
            max_header_bytes, max_body_bytes, max_decoded_read_bytes, max_header_count, max_error_body_bytes
        )
        self._proxies = proxies if proxies is not None and proxies.configured else None
        self._routes: dict[tuple[str, str, int], Proxy | None] = {}  # NO_PROXY decided once per origin

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
        proxy = self._route(scheme, host, port) if self._proxies is not None else None
        if proxy is None:
            key: PoolKey = (scheme, host, port, "")
        else:
            key = (scheme, host, port, proxy.display)
            if scheme == "http":  # absolute-form to the proxy; https goes through a CONNECT tunnel instead
                target = f"http://{host_header}{target}"
                if proxy.authorization:
                    headers = {**headers, "Proxy-Authorization": proxy.authorization}
        payload = _encode(method, target, host_header, headers, body)
        may_retry = True
        while True:
            if self._slots is not None:
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._slots.acquire()
                except TimeoutError:
                    raise ConnectError("no free upstream connection (UPSTREAM_POOL_SIZE)") from None
            try:
                conn = await self._acquire(key, proxy, connect_timeout, reuse=may_retry)
            except BaseException:
                self._free_slot()
                raise
            response = Response(conn, deadline)
            conn.begin(response)
            assert conn.transport is not None
            conn.transport.write(payload)
            try:
                await response.wait_headers()
            except HttpError:
                response.close()
                # The keep-alive race: the server closed the idle connection as we sent. Nothing was answered,
                # so the request goes once more on a new connection; never after a response byte or on a new one.
                if may_retry and conn.exchanges > 1 and conn.silent:
                    may_retry = False
                    continue
                raise
            except BaseException:
                response.close()
                raise
            return response

    def _route(self, scheme: str, host: str, port: int) -> Proxy | None:
        origin = (scheme, host, port)
        try:
            return self._routes[origin]
        except KeyError:
            assert self._proxies is not None
            proxy = self._routes[origin] = self._proxies.for_target(scheme, host, port)
            return proxy

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

    async def _acquire(self, key: PoolKey, proxy: Proxy | None, connect_timeout: float, reuse: bool) -> Connection:
        idle = self._idle.get(key) if reuse else None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            # A connection idle past the keep-alive window may have been closed by the server in the meantime.
            if not conn.closed and now - conn.idle_since < self._keepalive:
                return conn
            conn.close()
        context = self._ssl_context() if key[0] == "https" else None
        return await dial(self, key, proxy, context, connect_timeout)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, request target, Host header) of a URL; cached: a deployment calls one URL per
    endpoint, and urlsplit cost ~10 us per call."""
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
