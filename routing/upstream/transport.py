"""Upstream HTTP: the lean keep-alive pool (routing/http1.py) on the hot path, an aiohttp session for the rest.

Calls to deployments go through `Pool`; health probes and other side requests use `session`. Foreign errors
are translated once, here, into UpstreamError.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from adapters.base import Adapter, ProtocolError, UpstreamRequest
from adapters.redact import redact
from adapters.sse import SSEDecoder
from routing.config.schema import DeploymentConfig, Timeouts
from routing.errors import ClientRequestError, UpstreamError
from routing.retry import parse_retry_after
from routing.upstream.http1 import ConnectError, HttpError, Pool, Response

# Statuses that mean "this deployment cannot serve now" and so fall back; any other 4xx is the client's fault.
RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 409, 425, 429})
_MAX_ERROR_BODY = 64 * 1024


class HttpTransport:
    """Owns the connection pools (httpx's measured ~10x slower than aiohttp's, ours faster still: bench/RESULTS.md)."""

    def __init__(self, pool_size: int = 0, pool_per_host: int = 0, keepalive: float = 30.0) -> None:
        self._pool_size, self._per_host, self._keepalive = pool_size, pool_per_host, keepalive
        self._session: aiohttp.ClientSession | None = None
        self._pool: Pool | None = None

    async def start(self) -> None:
        self._pool = Pool(keepalive=self._keepalive, limit=self._pool_size)
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, limit_per_host=self._per_host, keepalive_timeout=self._keepalive, ttl_dns_cache=300
        )
        # No retries here: the executor is the one retry loop. No env proxies: upstreams are configured explicitly.
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("transport not started")
        return self._session

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("transport not started")
        return self._pool

    async def open(self, dep: DeploymentConfig, req: UpstreamRequest, adapter: Adapter, budget: float) -> Response:
        """Send the request and wait for response headers within the time-to-first-byte budget."""
        t = dep.timeouts
        try:
            async with asyncio.timeout(min(t.first_token, budget)):
                resp = await self.pool.request(
                    req.method,
                    req.url,
                    req.headers,
                    req.body,
                    connect_timeout=t.connect,
                    total_timeout=min(t.total, budget),
                )
        except TimeoutError:
            raise UpstreamError("timeout", f"{dep.name}: no response within {min(t.first_token, budget):g}s") from None
        except ConnectError as exc:
            raise UpstreamError("connect", f"{dep.name}: cannot connect ({exc})") from None
        except HttpError as exc:
            raise UpstreamError("connect", f"{dep.name}: connection failed ({exc})") from None
        except OSError as exc:
            raise UpstreamError("connect", f"{dep.name}: connection failed ({type(exc).__name__})") from None
        if resp.status >= 400:
            await _raise_for_status(dep, resp, adapter)
        return resp

    async def read_json(
        self, dep: DeploymentConfig, resp: Response, adapter: Adapter, request: UpstreamRequest | None = None
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout_at(resp.deadline):
                body = await resp.read()
        except TimeoutError:
            raise UpstreamError("timeout", f"{dep.name}: body not received within {dep.timeouts.total:g}s") from None
        except (HttpError, OSError) as exc:
            raise UpstreamError("stream", f"{dep.name}: connection lost while reading ({exc})") from None
        finally:
            resp.release()
        try:
            return adapter.parse_response(body, request=request)
        except ProtocolError as exc:
            raise UpstreamError("protocol", f"{dep.name}: {exc}") from None

    async def sse_batches(
        self, dep: DeploymentConfig, resp: Response, timeouts: Timeouts
    ) -> AsyncIterator[list[bytes]]:
        """The SSE `data` payloads completed by each upstream read, as they arrive (never waiting for more).

        One timer per read, not per line: a gap longer than `timeouts.idle` between upstream bytes, or the
        exchange running past `timeouts.total`, ends the stream. Bytes already buffered are taken without a timer.
        """
        decoder = SSEDecoder()
        idle = timeouts.idle
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = resp.read_nowait()
                if not data and not resp.at_eof():
                    async with asyncio.timeout_at(min(loop.time() + idle, resp.deadline)):
                        data = await resp.readany()
            except TimeoutError:
                if loop.time() >= resp.deadline:
                    raise UpstreamError("timeout", f"{dep.name}: stream exceeded {timeouts.total:g}s in all") from None
                raise UpstreamError("timeout", f"{dep.name}: stream stalled for {idle:g}s") from None
            except (HttpError, OSError) as exc:
                raise UpstreamError("stream", f"{dep.name}: connection lost mid-stream ({exc})") from None
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


async def _raise_for_status(dep: DeploymentConfig, resp: Response, adapter: Adapter) -> None:
    try:
        async with asyncio.timeout_at(resp.deadline):
            body = await resp.read(_MAX_ERROR_BODY)
    except (HttpError, OSError, TimeoutError):
        body = b""
    finally:
        resp.close()
    status = resp.status
    message = redact(adapter.error_message(status, body), (dep.api_key,))  # upstreams echo what they were sent
    retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time()) if status in (429, 503) else None
    if status >= 500 or status in RETRYABLE_STATUS:
        raise UpstreamError("status", f"{dep.name}: HTTP {status}: {message}", status=status, retry_after=retry_after)
    raise ClientRequestError(status, message)
