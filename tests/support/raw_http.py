"""A raw HTTP/1.1 connection over one socket, for what well-behaved clients never send: request heads that trickle,
that never end, that are too large or malformed."""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A response as it came off the wire: status, lower-cased headers, the body (up to Content-Length)."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class RawConnection:
    """One client socket to 127.0.0.1:port, with a receive buffer that the read methods share."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answered(self) -> bool:
        """Whether the server has sent something (or closed) already, without waiting."""
        return bool(self.buffer) or bool(select.select([self.sock], [], [], 0)[0])

    def receive(self, timeout: float) -> bool:
        """Read what arrives within `timeout` into the buffer; False once the server has closed its side."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return True
        except ConnectionResetError:
            chunk = b""
        self.buffer += chunk
        self.eof = not chunk
        return bool(chunk)

    def response_head(self, timeout: float = 5.0) -> tuple[int, dict[str, str]]:
        """The status and headers of the next response, its body left in the buffer."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buffer:
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"no response head within {timeout} s (got {self.buffer[:200]!r})")
            self.receive(max(0.01, deadline - time.monotonic()))
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def response(self, timeout: float = 5.0) -> RawResponse:
        """The next whole response (its body delimited by Content-Length)."""
        deadline = time.monotonic() + timeout
        status, headers = self.response_head(timeout)
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"body shorter than {length} bytes: {self.buffer[:200]!r}")
            self.receive(max(0.01, deadline - time.monotonic()))
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return RawResponse(status, headers, body)

    def closed_within(self, timeout: float) -> float | None:
        """Seconds until the server closed the connection (what it sent meanwhile stays in the buffer), or None."""
        began = time.monotonic()
        while not self.eof:
            left = timeout - (time.monotonic() - began)
            if left <= 0:
                return None
            self.receive(left)
        return time.monotonic() - began

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def vm_rss_kib(pid: int) -> int:
    """The resident set size of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")
