"""A small forward proxy on loopback for the upstream client's proxy tests: absolute-form http and CONNECT tunnels.

It records every request it is sent (method, target, headers, Proxy-Authorization included) and, given
`credentials`, answers 407 to a request without the matching Basic authorization. Plain http requests are
forwarded one at a time in origin-form (Proxy-Authorization removed) over one upstream connection per client
connection and origin; the upstream's response must carry Content-Length or end with its connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the proxy was sent, as it arrived."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def authorization(self) -> str | None:
        return self.headers.get("proxy-authorization")


# Names only this proxy resolves (to loopback): the gateway never sends loopback targets through a proxy, so a
# proxied test target needs a name the gateway itself does not resolve.
HOSTS = {"upstream.test": "127.0.0.1", "other.test": "127.0.0.1"}


class ForwardProxy:
    """`async with ForwardProxy() as proxy:` listens on 127.0.0.1; `proxy.port`, `proxy.seen`, `proxy.connections`.
    It resolves the names in HOSTS itself."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.seen: list[Seen] = []
        self.connections = 0
        self._expected = None
        if credentials is not None:
            self._expected = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        self._server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        upstreams: dict[tuple[str, int], tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, headers = _parse_head(head)
                self.seen.append(Seen(method, target, headers))
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self._expected is not None and headers.get("proxy-authorization") != self._expected:
                    writer.write(_reply(407, b"proxy authentication required", 'Proxy-Authenticate: Basic realm="t"'))
                    await writer.drain()
                    return
                if method == "CONNECT":
                    await self._tunnel(target, reader, writer)
                    return
                if not await self._forward(target, head, body, writer, upstreams):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for _, up in upstreams.values():
                up.close()
            writer.close()
            self._tasks.discard(task)

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, _, port = target.rpartition(":")
        try:
            name = host.strip("[]")
            up_reader, up_writer = await asyncio.open_connection(HOSTS.get(name, name), int(port))
        except OSError:
            writer.write(_reply(502, b"cannot reach the target"))
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            up_writer.close()

    async def _forward(
        self,
        target: str,
        head: bytes,
        body: bytes,
        writer: asyncio.StreamWriter,
        upstreams: dict[tuple[str, int], tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    ) -> bool:
        """Send one absolute-form request on in origin-form and relay its response; False when the client is done."""
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            writer.write(_reply(400, b"absolute-form http:// target expected"))
            await writer.drain()
            return False
        origin = (url.hostname, url.port or 80)
        if origin not in upstreams:
            upstreams[origin] = await asyncio.open_connection(HOSTS.get(origin[0], origin[0]), origin[1])
        up_reader, up_writer = upstreams[origin]
        lines = head.decode("latin-1").split("\r\n")
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        method = lines[0].split(" ", 1)[0]
        kept = [line for line in lines[1:] if line and not line.lower().startswith("proxy-authorization:")]
        up_writer.write(("\r\n".join([f"{method} {path} HTTP/1.1", *kept]) + "\r\n\r\n").encode("latin-1") + body)
        await up_writer.drain()
        reply_head = await up_reader.readuntil(b"\r\n\r\n")
        _, _, reply_headers = _parse_head(reply_head)
        if "content-length" in reply_headers:
            writer.write(reply_head + await up_reader.readexactly(int(reply_headers["content-length"])))
            await writer.drain()
            return True
        writer.write(reply_head + await up_reader.read())
        await writer.drain()
        return False


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return first[0], first[1] if len(first) > 1 else "", headers


def _reply(status: int, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} Proxy Says No", f"Content-Length: {len(body)}", "Connection: close", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
