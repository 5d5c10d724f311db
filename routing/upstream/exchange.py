"""What the transport reads an answer through, whoever produced it: a socket (http1.Response) or a mount (mock://),
and the shape of a side request (a health probe, the Maps script) made through the same pool."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from adapters.base import UpstreamRequest
from routing.config.schema import DeploymentConfig


class UpstreamResponse(Protocol):
    """Status and headers at once; the body as it arrives. `deadline` is the loop time the exchange must end by."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def deadline(self) -> float: ...

    def at_eof(self) -> bool: ...

    def read_nowait(self) -> bytes: ...

    async def readany(self) -> bytes: ...

    async def read(self, limit: int | None = None, idle: float | None = None) -> bytes:
        """The body (its first `limit` bytes); with `idle`, a longer wait for more, or one past `deadline`, is a
        TimeoutError."""

    def release(self) -> None: ...

    def close(self) -> None: ...


class Mount(Protocol):
    """A transport for one URL scheme besides http(s), like httpx's mounts: `mock://` is served in process."""

    async def open(self, dep: DeploymentConfig, request: UpstreamRequest, deadline: float) -> UpstreamResponse: ...


class Get(Protocol):
    """`HttpTransport.get`: status, headers and at most `max_bytes` of body (0: none); failures are UpstreamError."""

    async def __call__(
        self, url: str, headers: Mapping[str, str], total_timeout: float, max_bytes: int
    ) -> tuple[int, Mapping[str, str], bytes]: ...
