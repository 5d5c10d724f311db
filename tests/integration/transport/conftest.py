"""Raw loopback servers for the upstream client's tests: they answer with exactly the bytes a test gives."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

# request bytes -> writes to send; a CLOSE among them hangs up there, a float pauses that many seconds
Handler = Callable[[bytes], Sequence[bytes | float]]
CLOSE = b""


class RawServer:
    """Reads one request per exchange (headers + content-length body) and sends the handler's bytes."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions?x=1"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                for data in self.handler(request):
                    if isinstance(data, float):
                        await asyncio.sleep(data)
                        continue
                    if data is CLOSE:
                        return
                    writer.write(data)
                    await writer.drain()
                    await asyncio.sleep(0.01)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], asyncio.Future[RawServer]]]:
    servers: list[RawServer] = []

    async def start(handler: Handler) -> RawServer:
        raw = RawServer(handler)
        raw.server = await asyncio.start_server(raw.serve, "127.0.0.1", 0)
        servers.append(raw)
        return raw

    yield start  # type: ignore[misc]
    for raw in servers:
        assert raw.server is not None
        raw.server.close()


def ok(body: bytes, *extra: str) -> list[bytes]:
    head = "\r\n".join(["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra]) + "\r\n\r\n"
    return [head.encode() + body]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,DNS:upstream.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def tls_server(raw: RawServer, certificate: tuple[Path, Path]) -> tuple[asyncio.Server, int]:
    """Serve `raw` over TLS with the test certificate (for localhost); returns the server and its port."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(raw.serve, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]
