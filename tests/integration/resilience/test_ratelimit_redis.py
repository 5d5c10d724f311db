"""Redis rate limits: one atomic script, so every worker process shares one limit."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.lifespan import build_limiter
from gateway.settings import Settings
from routing.limits.ratelimit import Denial, InProcessRateLimiter, Limit, Reservation
from routing.limits.ratelimit_redis import RateLimitBackendError, RedisRateLimiter

from .conftest import REDIS_URL

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_000.0

# One gateway worker: warm its connection, wait for the common start line, then fire every reserve at once.
WORKER = """
import asyncio, sys, time
from routing.limits.ratelimit import Limit, Reservation
from routing.limits.ratelimit_redis import RedisRateLimiter

async def main(url, prefix, rpm, tpm, tokens, calls, start):
    limiter = RedisRateLimiter.from_url(url, prefix=prefix)
    await limiter.peek([])
    await asyncio.sleep(max(0.0, start - time.time()))
    limits = [Limit("dep:m/a", rpm=rpm, tpm=tpm)]
    results = await asyncio.gather(*(limiter.reserve(limits, tokens) for _ in range(calls)))
    await limiter.close()
    print(sum(isinstance(r, Reservation) for r in results))

url, prefix, rpm, tpm, tokens, calls, start = sys.argv[1:8]
asyncio.run(main(url, prefix, int(rpm), int(tpm), int(tokens), int(calls), float(start)))
"""


async def run_workers(prefix: str, processes: int, rpm: int, tpm: int, tokens: int, calls: int) -> list[int]:
    """Run `processes` OS processes against one limit; the number each admitted."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.time() + 1.5  # after every interpreter has started and connected
    args = [REDIS_URL, prefix, str(rpm), str(tpm), str(tokens), str(calls), repr(start)]
    procs: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(processes):
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-c", WORKER, *args, stdout=PIPE, stderr=PIPE, env=env
                )
            )
        counts = []
        for proc in procs:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            assert proc.returncode == 0, err.decode()
            counts.append(int(out))
        return counts
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_four_processes_share_one_rpm_limit(redis_client: Redis, redis_prefix: str) -> None:
    counts = await run_workers(redis_prefix, processes=4, rpm=20, tpm=0, tokens=0, calls=15)
    assert sum(counts) == 20, counts
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    (state,) = await limiter.peek([Limit("dep:m/a", rpm=20)])
    assert state.remaining_requests == 0


async def test_four_processes_never_exceed_tpm(redis_client: Redis, redis_prefix: str) -> None:
    counts = await run_workers(redis_prefix, processes=4, rpm=0, tpm=1000, tokens=30, calls=20)
    assert sum(counts) == 1000 // 30, counts
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    (state,) = await limiter.peek([Limit("dep:m/a", tpm=1000)])
    assert state.remaining_tokens == 1000 - 33 * 30


async def test_concurrent_reserves_in_one_process(redis_client: Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    limits = [Limit("dep:m/a", rpm=10, tpm=10_000), Limit("model:m", tpm=500)]
    results = await asyncio.gather(*(limiter.reserve(limits, 60, now=T0) for _ in range(20)))
    admitted = [r for r in results if isinstance(r, Reservation)]
    assert len(admitted) == 8  # model tpm: 8 x 60 = 480 <= 500
    denial = next(r for r in results if isinstance(r, Denial))
    assert (denial.scope, denial.exhausted, denial.retry_after) == ("model:m", "tokens", 60.0)
    dep_state, model_state = await limiter.peek(limits, now=T0)
    assert (dep_state.remaining_requests, dep_state.remaining_tokens) == (2, 10_000 - 480)  # all or nothing
    assert model_state.remaining_tokens == 20


async def test_settle_adjusts_both_ways(redis_client: Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    limits = [Limit("dep:m/a", rpm=100, tpm=1000)]
    first = await limiter.reserve(limits, 500, now=T0)
    assert isinstance(first, Reservation)
    await limiter.settle(first, 100, now=T0 + 1)
    assert (await limiter.peek(limits, now=T0 + 1))[0].remaining_tokens == 900
    second = await limiter.reserve(limits, 850, now=T0 + 1)
    assert isinstance(second, Reservation)
    await limiter.settle(second, 880, now=T0 + 2)
    assert (await limiter.peek(limits, now=T0 + 2))[0].remaining_tokens == 20
    await limiter.settle(second, 0, now=T0 + 3)
    third = await limiter.reserve(limits, 400, now=T0 + 3)
    assert isinstance(third, Reservation)
    await limiter.release(third, now=T0 + 3)
    state = (await limiter.peek(limits, now=T0 + 3))[0]
    assert (state.remaining_tokens, state.remaining_requests) == (870, 97)  # release keeps the request
    late = await limiter.reserve(limits, 10, now=T0 + 4)
    assert isinstance(late, Reservation)
    await limiter.settle(late, 60, now=T0 + 100)  # the window passed: the overrun is charged now
    assert (await limiter.peek(limits, now=T0 + 100))[0].remaining_tokens == 950


async def test_same_decisions_as_in_process(redis_client: Redis, redis_prefix: str) -> None:
    redis_limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    local = InProcessRateLimiter()
    limits = [Limit("dep:m/a", rpm=7, tpm=900), Limit("client:k", rpm=5, tpm=0)]
    for step in range(60):
        now = T0 + step * 3.7
        tokens = (step * 37) % 300
        a, b = await redis_limiter.reserve(limits, tokens, now=now), await local.reserve(limits, tokens, now=now)
        assert a == b, step
        if isinstance(a, Reservation) and isinstance(b, Reservation) and step % 3 == 0:
            await redis_limiter.settle(a, tokens // 2, now=now + 1)
            await local.settle(b, tokens // 2, now=now + 1)


async def test_server_time_and_expiry(redis_client: Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    reservation = await limiter.reserve([Limit("dep:m/a", rpm=1, tpm=100)], 10)
    assert isinstance(reservation, Reservation)
    seconds, _ = await redis_client.time()
    assert abs(reservation.at - seconds) < 5
    assert isinstance(await limiter.reserve([Limit("dep:m/a", rpm=1, tpm=100)], 10), Denial)
    for suffix in ("r", "t"):
        ttl = await redis_client.ttl(f"{redis_prefix}:dep:m/a:{suffix}")
        assert 0 < ttl <= 62


async def test_the_lifespan_limiter_uses_redis_when_configured(redis_client: Redis, redis_prefix: str) -> None:
    settings = Settings.from_env({"REDIS_URL": REDIS_URL, "RATE_LIMIT_PREFIX": redis_prefix})
    shared = Redis.from_url(settings.redis_url)
    limiter = build_limiter(settings, shared)
    assert isinstance(limiter, RedisRateLimiter)
    assert isinstance(await limiter.reserve([Limit("client:k", rpm=1)], 0), Reservation)
    assert await redis_client.exists(f"{redis_prefix}:client:k:r")
    await limiter.close()
    await shared.aclose()


async def test_unreachable_redis_fails_closed_or_open() -> None:
    closed = RedisRateLimiter.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(RateLimitBackendError):
        await closed.reserve([Limit("client:k", rpm=1)], 0)
    await closed.close()
    fail_open = RedisRateLimiter.from_url("redis://127.0.0.1:1/0", fail_open=True)
    reservation = await fail_open.reserve([Limit("client:k", rpm=1)], 5)
    assert isinstance(reservation, Reservation) and reservation.limits == ()
    await fail_open.settle(reservation, 3)
    await fail_open.close()
