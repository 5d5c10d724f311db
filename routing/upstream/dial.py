"""Opening one connection for routing/upstream/http1.py: direct, to an http proxy, or through a CONNECT tunnel.

Every failure is a ConnectError whose message names the proxy by host:port only (never its credentials) and
never the target URL. Dual-stack hosts are dialled with happy eyeballs where the loop offers it (asyncio's own
loop; uvloop tries the addresses in turn). That race runs in a task of its own (`_connect`): Python 3.11's drops
the socket it has just connected when the task awaiting it is cancelled in that moment (a client gone mid-dial),
and the descriptor leaks until garbage collection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from routing.upstream.http1_connection import Connection, PoolKey, PoolSide
from routing.upstream.http1_response import ConnectError, LimitExceeded
from routing.upstream.proxy import Proxy

_HAPPY_EYEBALLS: dict[str, Any] = {"happy_eyeballs_delay": 0.25, "interleave": 1}

Transport = tuple[asyncio.BaseTransport, asyncio.BaseProtocol]


async def _connect(
    factory: Callable[[], asyncio.BaseProtocol], host: str, port: int, within: float, **options: Any
) -> Transport:
    """loop.create_connection, safe to cancel: a caller that stops waiting leaves the dial to end on its own
    (in `within` seconds), and whatever it connects is then closed."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, asyncio.BaseEventLoop):  # uvloop: no happy eyeballs, no race to leak from
        return await loop.create_connection(factory, host, port, **options)

    async def bounded() -> Transport:
        async with asyncio.timeout(within):
            return await loop.create_connection(factory, host, port, **options, **_HAPPY_EYEBALLS)

    task = loop.create_task(bounded())
    try:
        return await asyncio.shield(task)
    except BaseException:
        task.add_done_callback(_close_unclaimed)
        raise


def _close_unclaimed(task: asyncio.Task[Transport]) -> None:
    if not task.cancelled() and task.exception() is None:  # exception() also marks a failure as seen
        task.result()[0].close()


async def dial(
    pool: PoolSide, key: PoolKey, proxy: Proxy | None, context: ssl.SSLContext | None, connect_timeout: float
) -> Connection:
    """A connected Connection for `key` within `connect_timeout` seconds, TLS-wrapped when `context` is given."""
    _, host, port, _ = key
    where = f"proxy {proxy.display}: " if proxy is not None else ""
    try:
        async with asyncio.timeout(connect_timeout):
            if proxy is None:
                return await _open(lambda: Connection(pool, key), host, port, context, connect_timeout)
            if context is None:  # an http target: requests go to the proxy in absolute-form
                return await _open(lambda: Connection(pool, key), proxy.host, proxy.port, None, connect_timeout)
            return await _tunnel(pool, key, proxy, context, connect_timeout)
    except TimeoutError:
        raise ConnectError(f"{where}connect timeout after {connect_timeout:g}s") from None
    except ssl.SSLError as exc:
        raise ConnectError(f"TLS handshake failed ({exc.reason or type(exc).__name__})", exc) from None
    except OSError as exc:
        raise ConnectError(where + (exc.strerror or type(exc).__name__), exc) from None


async def _open(
    factory: Callable[[], Connection], host: str, port: int, context: ssl.SSLContext | None, within: float
) -> Connection:
    tls: dict[str, Any] = {"ssl": context, "server_hostname": host} if context is not None else {}
    _, conn = await _connect(factory, host, port, within, **tls)
    assert isinstance(conn, Connection)
    return conn


async def _tunnel(pool: PoolSide, key: PoolKey, proxy: Proxy, context: ssl.SSLContext, within: float) -> Connection:
    """CONNECT through the proxy, then TLS to the target over the tunnel, verifying the target's certificate."""
    loop = asyncio.get_running_loop()
    _, host, port, _ = key
    transport, reply = await _connect(lambda: _ConnectReply(pool.caps.header_bytes), proxy.host, proxy.port, within)
    assert isinstance(transport, asyncio.Transport) and isinstance(reply, _ConnectReply)
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status = await reply.status
        if not 200 <= status < 300:
            raise ConnectError(f"proxy {proxy.display} answered CONNECT with HTTP {status}")
        conn = Connection(pool, key)
        tls = await loop.start_tls(transport, conn, context, server_hostname=host)
    except BaseException:
        transport.close()
        raise
    if tls is None:  # the loop dropped the transport during the handshake
        raise ConnectError(f"proxy {proxy.display}: tunnel closed during the TLS handshake")
    conn.connection_made(tls)
    return conn


class _ConnectReply(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT up to its blank line: the status is all that matters."""

    def __init__(self, cap: int) -> None:
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._buffer = b""
        self._cap = cap

    def data_received(self, data: bytes) -> None:
        if self.status.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > self._cap:
                self._settle(LimitExceeded(f"proxy reply to CONNECT exceeds {self._cap} bytes (max_header_bytes)"))
            return
        fields = self._buffer[:end].split(b"\r\n", 1)[0].split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
            self._settle(ConnectError("proxy sent a malformed reply to CONNECT"))
            return
        self.status.set_result(int(fields[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(ConnectError("proxy closed the connection during CONNECT"))

    def _settle(self, exc: Exception) -> None:
        if not self.status.done():
            self.status.set_exception(exc)
            self.status.exception()  # retrieved: a dial abandoned at its timeout must not log "never retrieved"
