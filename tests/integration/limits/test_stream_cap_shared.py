"""MAX_STREAMS_PER_CLIENT across processes: with REDIS_URL every worker and replica draws on one count."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from routing.limits.streams import RedisStreamCap
from tests.integration.limits.test_multiprocess import REDIS_URL
from tests.integration.limits.test_multiprocess import redis_prefix as redis_prefix
from tests.support.gateway import ProcessGateway, base_env, write_config

SLOW = {"models": [{"id": "m", "route": [{"kind": "mock", "mock": {"chunk_delay_ms": 200, "completion_tokens": 20}}]}]}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def test_two_caps_share_one_count_and_a_dead_holders_lease_runs_out(redis_prefix: str) -> None:
    a = RedisStreamCap(2, Redis.from_url(REDIS_URL), redis_prefix, lease_s=0.3, owns_client=True)
    b = RedisStreamCap(2, Redis.from_url(REDIS_URL), redis_prefix, lease_s=0.3, owns_client=True)
    first, second = await a.acquire("team-a"), await a.acquire("team-a")
    assert first is not None and second is not None and first.shared
    assert await b.acquire("team-a") is None  # the other worker sees both
    assert await b.acquire("team-b") is not None  # another client has its own count
    a.release(first)
    await asyncio.sleep(0.05)  # the release is sent in the background
    third = await b.acquire("team-a")
    assert third is not None
    assert await a.acquire("team-a") is None
    await asyncio.sleep(0.35)  # neither is released: a crashed worker's slots come back when the lease ends
    assert await a.acquire("team-a") is not None
    await a.close()
    await b.close()


async def test_redis_down_admits_rather_than_refusing_every_stream() -> None:
    cap = RedisStreamCap(1, Redis.from_url("redis://127.0.0.1:1/0"), "gwtest", lease_s=1, owns_client=True)
    lease = await cap.acquire("team-a")
    assert lease is not None and not lease.shared
    cap.release(lease)
    await cap.close()


def test_a_second_process_refuses_the_clients_second_stream(tmp_path: Path, redis_prefix: str) -> None:
    env = {
        **base_env(tmp_path),
        **write_config(tmp_path, SLOW),
        "CALL_LOG_SYNC": "false",
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_PREFIX": redis_prefix,
        "MAX_STREAMS_PER_CLIENT": "1",
    }
    replica_env = {**env, "SQLITE_DB_PATH": str(tmp_path / "replica.db"), "CALL_LOG_SPOOL_DIR": str(tmp_path / "sp2")}
    with ProcessGateway(env) as one, ProcessGateway(replica_env) as two:
        with httpx.stream("POST", f"{one.url}/v1/chat/completions", json=BODY, timeout=20) as held:
            assert held.status_code == 200
            body = held.iter_bytes()  # kept: a dropped iterator would close the stream
            next(body)  # the stream is open on the first process
            refused = httpx.post(f"{two.url}/v1/chat/completions", json=BODY, timeout=20)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "too_many_streams"
        deadline = time.monotonic() + 10  # the first stream has ended (client closed): its slot comes back
        status = 0
        while time.monotonic() < deadline:
            with httpx.stream("POST", f"{two.url}/v1/chat/completions", json=BODY, timeout=20) as again:
                status = again.status_code
                again.read()
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200


@pytest.mark.parametrize("limit", [0])
async def test_no_limit_never_touches_redis(limit: int) -> None:
    cap = RedisStreamCap(limit, Redis.from_url("redis://127.0.0.1:1/0"), "gwtest", lease_s=1, owns_client=True)
    for _ in range(3):
        assert await cap.acquire("x") is not None
    await cap.close()
