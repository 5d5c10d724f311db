"""Real gateway processes: limits shared through Redis hold across workers and replicas; SIGHUP reloads."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.gateway import ProcessGateway, base_env, write_config

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LIMITED = {"models": [{"id": "m", "rpm": 10, "route": [{"kind": "mock", "mock": {"completion_tokens": 2}}]}]}


@pytest.fixture
def redis_prefix() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI but {REDIS_URL} is unreachable: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    prefix = f"gwtest:{uuid.uuid4().hex[:10]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def blast(urls: list[str], n: int) -> list[int]:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    def one(i: int) -> int:
        # a fresh connection each time so the kernel spreads calls over every worker
        return httpx.post(
            f"{urls[i % len(urls)]}/v1/chat/completions", json=body, timeout=20, headers={"Connection": "close"}
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        return list(pool.map(one, range(n)))


def test_two_workers_and_a_replica_share_one_limit_through_redis(tmp_path: Path, redis_prefix: str) -> None:
    env = {
        **base_env(tmp_path),
        **write_config(tmp_path, LIMITED),
        "CALL_LOG_SYNC": "false",
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_PREFIX": redis_prefix,
    }
    replica_env = {**env, "SQLITE_DB_PATH": str(tmp_path / "replica.db"), "CALL_LOG_SPOOL_DIR": str(tmp_path / "sp2")}
    with ProcessGateway(env, workers=2) as gw, ProcessGateway(replica_env) as replica:
        codes = blast([gw.url, replica.url], 36)
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 26


def test_without_redis_each_process_counts_alone(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), **write_config(tmp_path, LIMITED), "CALL_LOG_SYNC": "false"}
    with ProcessGateway(env) as one:
        codes = blast([one.url], 15)
    assert codes.count(200) == 10  # one process: exact


def test_sighup_reloads_config_and_a_bad_file_keeps_the_old_one(tmp_path: Path) -> None:
    config = {
        "models": [
            {
                "id": "m",
                "route": [{"kind": "mock", "name": "x", "weight": 1}, {"kind": "mock", "name": "y", "weight": 1}],
            }
        ]
    }
    env = {**base_env(tmp_path), **write_config(tmp_path, config), "CALL_LOG_SYNC": "false"}
    models_path = Path(env["MODELS_CONFIG"])
    with ProcessGateway(env) as gw:

        def weights() -> dict[str, float]:
            rows = httpx.get(f"{gw.url}/routing").json()["models"]["m"]["deployments"]
            return {r["deployment"]: r["weight"] for r in rows}

        assert weights() == {"x": 0.5, "y": 0.5}
        write_config(
            tmp_path,
            {
                "models": [
                    {
                        "id": "m",
                        "route": [
                            {"kind": "mock", "name": "x", "weight": 3},
                            {"kind": "mock", "name": "y", "weight": 1},
                        ],
                    }
                ]
            },
        )
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while weights() != {"x": 0.75, "y": 0.25} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert weights() == {"x": 0.75, "y": 0.25}
        models_path.write_text("models: [ {id: m, route: [{kind: warp}]} ]")
        gw.signal(signal.SIGHUP)
        time.sleep(0.5)
        assert weights() == {"x": 0.75, "y": 0.25}
        assert (
            httpx.post(
                f"{gw.url}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "still up"}]},
            ).status_code
            == 200
        )
    assert "config reload refused" in gw.read_output()
