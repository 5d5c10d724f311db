"""The upstream HTTP client: one pooled aiohttp session, foreign errors translated once into UpstreamError."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from adapters.base import Adapter, ProtocolError, UpstreamRequest
from adapters.sse import SSEDecoder
from routing.backoff import parse_retry_after
from routing.config import DeploymentConfig, Timeouts
from routing.errors import ClientRequestError, UpstreamError

# Statuses that mean "this deployment cannot serve now" and so fall back; any other 4xx is the client's fault.
RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 409, 425, 429})
_MAX_ERROR_BODY = 64 * 1024


class HttpTransport:
    """Owns the connection pool. aiohttp measured ~10x httpx's pool under concurrency (bench/RESULTS.md)."""

    def __init__(self, pool_size: int = 0, pool_per_host: int = 0, keepalive: float = 30.0) -> None:
        self._pool_size, self._per_host, self._keepalive = pool_size, pool_per_host, keepalive
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, limit_per_host=self._per_host, keepalive_timeout=self._keepalive, ttl_dns_cache=300
        )
        # No retries here: the executor is the one retry loop. No env proxies: upstreams are configured explicitly.
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("transport not started")
        return self._session

    async def open(self, dep: DeploymentConfig, req: UpstreamRequest, adapter: Adapter, budget: float) -> Any:
        """Send the request and wait for response headers within the time-to-first-byte budget."""
        t = dep.timeouts
        timeout = aiohttp.ClientTimeout(total=min(t.total, budget), connect=t.connect, sock_connect=t.connect)
        try:
            async with asyncio.timeout(min(t.first_token, budget)):
                resp = await self.session.request(
                    req.method, req.url, data=req.body, headers=req.headers, timeout=timeout, allow_redirects=False
                )
        except TimeoutError:
            raise UpstreamError("timeout", f"{dep.name}: no response within {min(t.first_token, budget):g}s") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError("connect", f"{dep.name}: cannot connect ({_reason(exc)})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError("connect", f"{dep.name}: connection failed ({type(exc).__name__})") from None
        if resp.status >= 400:
            await _raise_for_status(dep, resp, adapter)
        return resp

    async def read_json(
        self, dep: DeploymentConfig, resp: Any, adapter: Adapter, request: UpstreamRequest | None = None
    ) -> dict[str, Any]:
        try:
            body = await resp.read()
        except TimeoutError:
            raise UpstreamError("timeout", f"{dep.name}: body not received within {dep.timeouts.total:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError("stream", f"{dep.name}: connection lost while reading ({type(exc).__name__})") from None
        finally:
            resp.release()
        try:
            return adapter.parse_response(body, request=request)
        except ProtocolError as exc:
            raise UpstreamError("protocol", f"{dep.name}: {exc}") from None

    async def sse_batches(self, dep: DeploymentConfig, resp: Any, timeouts: Timeouts) -> AsyncIterator[list[bytes]]:
        """The SSE `data` payloads completed by each upstream read, as they arrive (never waiting for more).

        One idle timer per read, not per line: a gap longer than `timeouts.idle` between upstream bytes ends
        the stream. Bytes that are already buffered are taken without arming a timer at all.
        """
        decoder = SSEDecoder()
        content = resp.content
        idle = timeouts.idle
        while True:
            try:
                data = content.read_nowait()
                if not data and not content.at_eof():
                    async with asyncio.timeout(idle):
                        data = await content.readany()
            except TimeoutError:
                raise UpstreamError("timeout", f"{dep.name}: stream stalled for {idle:g}s") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise UpstreamError(
                    "stream", f"{dep.name}: connection lost mid-stream ({type(exc).__name__})"
                ) from None
            if not data:
                tail = decoder.flush()
                if tail is not None:
                    yield [tail]
                return
            try:
                events = decoder.feed_bytes(data)
            except ProtocolError as exc:
                raise UpstreamError("protocol", f"{dep.name}: {exc}") from None
            if events:
                yield events


async def _raise_for_status(dep: DeploymentConfig, resp: Any, adapter: Adapter) -> None:
    try:
        body = await resp.content.read(_MAX_ERROR_BODY)
    except (aiohttp.ClientError, OSError, TimeoutError):
        body = b""
    finally:
        resp.close()
    status = resp.status
    message = adapter.error_message(status, body)
    retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time()) if status in (429, 503) else None
    if status >= 500 or status in RETRYABLE_STATUS:
        raise UpstreamError("status", f"{dep.name}: HTTP {status}: {message}", status=status, retry_after=retry_after)
    raise ClientRequestError(status, message)


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    return exc.os_error.strerror or type(exc.os_error).__name__ if exc.os_error else "connector error"
