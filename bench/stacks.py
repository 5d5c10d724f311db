"""A minimal Starlette passthrough (POST body in, upstream body out) over several HTTP client stacks.

It isolates the one choice the gateway made for its upstream calls: the client library. Served by uvicorn
(uvloop + httptools), one worker: `python -m bench.stacks --client aiohttp --port P --upstream URL`.
Clients: `httpx` (AsyncClient, large pool), `httpx2` (Pydantic's httpx fork, same API and pool), `aiohttp` (one
ClientSession), `httpx-aiohttp` (httpx API over an aiohttp transport; needs the optional `httpx-aiohttp`
package), `pyreqwest` (Rust reqwest/hyper, one pooled Client), `http1` (the gateway's own pool).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CLIENTS = ("httpx", "httpx2", "aiohttp", "httpx-aiohttp", "pyreqwest", "http1")
Forward = Callable[[bytes, str], Awaitable[tuple[int, bytes]]]
_HEADERS = {"content-type": "application/json", "authorization": "Bearer bench-key"}


@asynccontextmanager
async def open_client(kind: str, upstream: str) -> AsyncIterator[Forward]:
    """A `forward(body, content_type)` bound to one pooled client of the given kind."""
    openers = {
        "http1": _http1,
        "aiohttp": _aiohttp,
        "httpx": _httpx,
        "httpx2": _httpx,
        "httpx-aiohttp": _httpx,
        "pyreqwest": _pyreqwest,
    }
    if kind not in openers:
        raise ValueError(f"--client must be one of {', '.join(CLIENTS)}, got {kind!r}")
    async with openers[kind](kind, upstream) as forward:
        yield forward


@asynccontextmanager
async def _http1(_: str, upstream: str) -> AsyncIterator[Forward]:
    from routing.upstream.http1 import Pool  # the gateway's own pool

    pool = Pool()

    async def forward(body: bytes, _: str) -> tuple[int, bytes]:
        resp = await pool.request("POST", upstream, _HEADERS, body, connect_timeout=5, total_timeout=30)
        data = await resp.read()
        resp.release()
        return resp.status, data

    try:
        yield forward
    finally:
        await pool.close()


@asynccontextmanager
async def _aiohttp(_: str, upstream: str) -> AsyncIterator[Forward]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def forward(body: bytes, _: str) -> tuple[int, bytes]:
            async with session.post(upstream, data=body, headers=_HEADERS) as resp:
                return resp.status, await resp.read()

        yield forward


@asynccontextmanager
async def _httpx(kind: str, upstream: str) -> AsyncIterator[Forward]:
    """httpx, Pydantic's httpx2 fork (same API) or httpx over an aiohttp transport."""
    httpx = importlib.import_module("httpx2" if kind == "httpx2" else "httpx")
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    if kind == "httpx-aiohttp":
        from httpx_aiohttp import HttpxAiohttpClient

        client = HttpxAiohttpClient(limits=limits, timeout=30.0)
    else:
        client = httpx.AsyncClient(limits=limits, timeout=30.0)
    async with client:

        async def forward(body: bytes, _: str) -> tuple[int, bytes]:
            resp = await client.post(upstream, content=body, headers=_HEADERS)
            return resp.status_code, resp.content

        yield forward


@asynccontextmanager
async def _pyreqwest(_: str, upstream: str) -> AsyncIterator[Forward]:
    """pyreqwest: reqwest/hyper on a Tokio runtime; one Client holds the pool (no connection cap by default)."""
    from pyreqwest.client import ClientBuilder

    builder = ClientBuilder().timeout(timedelta(seconds=30)).connect_timeout(timedelta(seconds=5))
    builder = builder.pool_idle_timeout(timedelta(seconds=30)).follow_redirects(False).default_headers(_HEADERS)
    async with builder.build() as client:

        async def forward(body: bytes, _: str) -> tuple[int, bytes]:
            resp = await client.post(upstream).body_bytes(body).build().send()
            return resp.status, bytes(await resp.bytes())

        yield forward


def create_app(kind: str, upstream: str) -> Starlette:
    """The passthrough app; the client lives in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_client(kind, upstream) as forward:
            app.state.forward = forward
            yield

    async def passthrough(request: Request) -> Response:
        status, body = await request.app.state.forward(await request.body(), "application/json")
        return Response(body, status, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"ok", 200)

    routes = [Route("/v1/chat/completions", passthrough, methods=["POST"]), Route("/ready", ready)]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description="minimal Starlette passthrough for the HTTP-stack comparison")
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="full URL of the upstream chat completions endpoint")
    args = parser.parse_args()
    import uvicorn

    app = create_app(args.client, args.upstream)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
