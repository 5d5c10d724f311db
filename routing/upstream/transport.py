"""Upstream HTTP: every request the gateway makes goes through one keep-alive pool (routing/upstream/http1.py).

Calls to deployments use `open`, `read_json` and `sse_batches`; side requests (health probes, the Maps script)
use `get`. URLs of another scheme go to a mounted transport (`mock://`: routing/upstream/mock.py) and are read
the same way. Foreign errors are translated once, here, into UpstreamError.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from adapters.base import Adapter, ProtocolError, UpstreamRequest
from adapters.redact import redact
from adapters.sse import SSEDecoder
from routing.config.schema import DeploymentConfig, Timeouts
from routing.errors import ClientRequestError, UpstreamError
from routing.retry import parse_retry_after
from routing.tracing import UPSTREAM_HEADERS
from routing.upstream.exchange import Mount, UpstreamResponse
from routing.upstream.http1 import Caps, Headers, HttpError, LimitExceeded, Pool
from routing.upstream.mock import MockTransport
from routing.upstream.proxy import Proxies

# Statuses that mean "this deployment cannot serve now" and so fall back; any other 4xx is the client's fault.
RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 409, 425, 429})
_MAX_ERROR_BODY = 64 * 1024
_HTTP = ("http://", "https://")
_DEFAULT_CAPS = Caps()


class HttpTransport:
    """Owns the one connection pool and the mounted in-process transports (why our own client: bench/RESULTS.md §8)."""

    def __init__(
        self,
        pool_size: int = 0,
        keepalive: float = 30.0,
        *,
        proxies: Proxies | None = None,
        max_header_bytes: int = _DEFAULT_CAPS.header_bytes,
        max_body_bytes: int = _DEFAULT_CAPS.body_bytes,
        max_decoded_read_bytes: int = _DEFAULT_CAPS.decoded_read_bytes,
        max_header_count: int = _DEFAULT_CAPS.header_count,
        mounts: Mapping[str, Mount] | None = None,
    ) -> None:
        self._pool_size, self._keepalive, self._proxies = pool_size, keepalive, proxies
        self._caps = Caps(
            max_header_bytes, max_body_bytes, max_decoded_read_bytes, max_header_count, error_body_bytes=_MAX_ERROR_BODY
        )
        self._mounts: dict[str, Mount] = {"mock": MockTransport(), **(mounts or {})}
        self._pool: Pool | None = None

    async def start(self) -> None:
        caps = self._caps
        # No retries here beyond the pool's one for a dead keep-alive connection: the executor is the retry loop.
        self._pool = Pool(
            keepalive=self._keepalive,
            limit=self._pool_size,
            proxies=self._proxies,
            max_header_bytes=caps.header_bytes,
            max_body_bytes=caps.body_bytes,
            max_decoded_read_bytes=caps.decoded_read_bytes,
            max_header_count=caps.header_count,
            max_error_body_bytes=caps.error_body_bytes,  # inflated no further than what an error message keeps
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("transport not started")
        return self._pool

    async def get(
        self, url: str, headers: Mapping[str, str], total_timeout: float, max_bytes: int
    ) -> tuple[int, Headers, bytes]:
        """A side request through the call pool: status, headers and the body, which may be at most `max_bytes`
        (0: not read at all, for a probe that needs only the status). Every failure is an UpstreamError whose
        message never holds the URL (it may carry a key)."""
        try:
            async with asyncio.timeout(total_timeout):
                resp = await self.pool.request(
                    "GET", url, dict(headers), None, connect_timeout=total_timeout, total_timeout=total_timeout
                )
                try:
                    body = await resp.read(max_bytes + 1) if max_bytes > 0 else b""
                except BaseException:
                    resp.close()
                    raise
        except (TimeoutError, OSError, HttpError) as exc:
            raise request_error(exc, "", f"timeout after {total_timeout:g}s") from None
        if len(body) > max_bytes:
            resp.close()
            raise UpstreamError("protocol", f"response body larger than {max_bytes} bytes")
        resp.release()  # with the body unread (max_bytes 0), its tail is drained so the connection can be pooled
        return resp.status, resp.headers, body

    async def open(
        self, dep: DeploymentConfig, req: UpstreamRequest, adapter: Adapter, budget: float
    ) -> UpstreamResponse:
        """Send the request and wait for response headers within the time-to-first-byte budget."""
        traced = UPSTREAM_HEADERS.get()
        if traced is not None:  # the attempt's own traceparent (routing/tracing.py)
            req = replace(req, headers={**req.headers, **traced})
        t = dep.timeouts
        if not req.url.startswith(_HTTP):
            resp = await self._open_mounted(dep, req, budget)
        else:
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
            except (TimeoutError, OSError, HttpError) as exc:
                waited = f"no response within {min(t.first_token, budget):g}s"
                raise request_error(exc, f"{dep.name}: ", waited) from None
        if resp.status >= 400:
            await _raise_for_status(dep, resp, adapter)
        return resp

    async def _open_mounted(self, dep: DeploymentConfig, req: UpstreamRequest, budget: float) -> UpstreamResponse:
        scheme = req.url.partition(":")[0].lower()
        mount = self._mounts.get(scheme)
        if mount is None:
            raise UpstreamError("connect", f"{dep.name}: no transport for {scheme}:// URLs", retryable=False)
        deadline = asyncio.get_running_loop().time() + min(dep.timeouts.total, budget)
        return await mount.open(dep, req, deadline)

    async def read_json(
        self, dep: DeploymentConfig, resp: UpstreamResponse, adapter: Adapter, request: UpstreamRequest | None = None
    ) -> dict[str, Any]:
        idle = dep.timeouts.idle
        try:
            body = await resp.read(idle=idle)  # a body trickling in is held to the streams' idle gap, not the total
        except TimeoutError:
            if asyncio.get_running_loop().time() < resp.deadline:
                raise UpstreamError("timeout", f"{dep.name}: body stalled for {idle:g}s") from None
            raise UpstreamError("timeout", f"{dep.name}: body not received within {dep.timeouts.total:g}s") from None
        except LimitExceeded as exc:
            raise UpstreamError("protocol", f"{dep.name}: {exc}") from None
        except (HttpError, OSError) as exc:
            raise UpstreamError("stream", f"{dep.name}: connection lost while reading ({exc})") from None
        finally:
            resp.release()
        try:
            return adapter.parse_response(body, request=request)
        except ProtocolError as exc:
            raise UpstreamError("protocol", f"{dep.name}: {exc}") from None

    async def sse_batches(
        self, dep: DeploymentConfig, resp: UpstreamResponse, timeouts: Timeouts
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
            except LimitExceeded as exc:
                raise UpstreamError("protocol", f"{dep.name}: {exc}") from None
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


def request_error(exc: BaseException, who: str, waited: str) -> UpstreamError:
    """The one translation of the pool's errors before a response arrived; messages never hold the URL."""
    if isinstance(exc, TimeoutError):
        return UpstreamError("timeout", f"{who}{waited}")
    if isinstance(exc, LimitExceeded):
        return UpstreamError("protocol", f"{who}{exc}")
    if isinstance(exc, HttpError):  # ConnectError included: refused, unreachable, TLS, a reply that is not HTTP
        return UpstreamError("connect", f"{who}connection failed ({exc})")
    return UpstreamError("connect", f"{who}connection failed ({type(exc).__name__})")


async def _raise_for_status(dep: DeploymentConfig, resp: UpstreamResponse, adapter: Adapter) -> None:
    try:
        body = await resp.read(_MAX_ERROR_BODY, idle=dep.timeouts.idle)
    except (HttpError, OSError, TimeoutError):
        body = b""
    finally:
        resp.close()
    status = resp.status
    message = redact(adapter.error_message(status, body), (dep.api_key,))  # upstreams echo what they were sent
    retry_after = parse_retry_after(resp.headers.get("retry-after"), time.time()) if status in (429, 503) else None
    if status >= 500 or status in RETRYABLE_STATUS:
        raise UpstreamError("status", f"{dep.name}: HTTP {status}: {message}", status=status, retry_after=retry_after)
    fields = adapter.error_fields(body)  # relayed as the upstream said them, masked like the message
    secrets = (dep.api_key,)
    code, param, kind = (redact(v, secrets) if v else None for v in (fields.code, fields.param, fields.type))
    raise ClientRequestError(status, message, code=code, param=param, upstream_type=kind)
