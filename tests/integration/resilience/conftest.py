"""Fixtures for resilience tests: the real Redis server and small real aiohttp upstreams on loopback."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    """A client of the machine's Redis; fails loudly in CI when Redis is missing, skips elsewhere."""
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI but {REDIS_URL} is unreachable: {type(exc).__name__}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL} (set CI=1 to make this a failure)")
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: Redis) -> AsyncIterator[str]:
    """A key prefix unique to the test; its keys are deleted afterwards."""
    prefix = f"test:rl:{uuid.uuid4().hex}"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis_client.delete(*keys)


class FakeUpstream:
    """A real HTTP server on 127.0.0.1: /health and /v1/models answer `status`; it records what it saw."""

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.seen: list[tuple[str, str | None]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("Authorization")))
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({"object": "list", "data": []}, status=self.status)

    async def start(self) -> None:
        """Listen on the previous port when restarting, else on a free one."""
        app = web.Application()
        app.router.add_get("/health", self._answer)
        app.router.add_get("/v1/models", self._answer)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    server = FakeUpstream()
    await server.start()
    yield server
    await server.stop()
