"""Several gateway processes as one through Redis: max_concurrent, circuits and health probes shared; Redis going
away and coming back; REDIS_FAIL=closed; the start-up warning of several workers without Redis."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from aiohttp import web

from tests.integration.limits.test_multiprocess import REDIS_URL
from tests.integration.limits.test_multiprocess import redis_prefix as redis_prefix
from tests.integration.routing.hybrid import hybrid_config
from tests.support.gateway import ProcessGateway, base_env, free_port, write_config
from tests.support.upstream import FakeUpstream
from tests.support.vllm_twin import TwinSpec, VllmTwin

MESSAGES = [{"role": "user", "content": "hi"}]


class CountingUpstream(FakeUpstream):
    """A fake upstream that counts its own concurrent chat calls (the peak) and the health probes it answers."""

    in_flight = 0
    peak = 0
    probes = 0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super()._chat(request)
        finally:
            self.in_flight -= 1

    async def _get(self, request: web.Request) -> web.Response:
        if request.path == "/health":
            self.probes += 1
        return await super()._get(request)


@pytest.fixture
def upstream() -> Iterator[CountingUpstream]:
    with CountingUpstream.in_thread("a", {"delay_headers": 0.4}) as up:
        yield up


def vllm(up: FakeUpstream, name: str = "a", **extra: Any) -> dict[str, Any]:
    return {"kind": "vllm", "name": name, "base_url": up.base_url, "provider_model_id": "fake-model", **extra}


def chat(url: str, model: str = "m") -> httpx.Response:
    body = {"model": model, "messages": MESSAGES}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30, headers={"Connection": "close"})


def wait_until(check: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> float | None:
    """Seconds until `check()` held, None when it never did within `timeout`."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            return time.monotonic() - began
        time.sleep(step)
    return None


def row(url: str, deployment: str = "a") -> dict[str, Any]:
    table = httpx.get(f"{url}/routing", timeout=5).json()
    return next(r for r in table["models"]["m"]["deployments"] if r["deployment"] == deployment)


def shared_up(url: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("gateway_shared_state_up "):
            return float(line.split()[1])
    return None


def pair_env(tmp_path: Path, models: Any, routing: Any, **extra: str) -> tuple[dict[str, str], dict[str, str]]:
    env = {**base_env(tmp_path), **write_config(tmp_path, models, routing), "CALL_LOG_SYNC": "false", **extra}
    other = {**env, "SQLITE_DB_PATH": str(tmp_path / "two.db"), "CALL_LOG_SPOOL_DIR": str(tmp_path / "sp2")}
    return env, other


def test_max_concurrent_holds_across_two_processes(
    tmp_path: Path, redis_prefix: str, upstream: CountingUpstream
) -> None:
    models = {"models": [{"id": "m", "route": [vllm(upstream, max_concurrent=2, health_path="none")]}]}
    env, other = pair_env(tmp_path, models, None, REDIS_URL=REDIS_URL, RATE_LIMIT_PREFIX=redis_prefix)
    with ProcessGateway(env) as one, ProcessGateway(other) as two:
        urls = [one.url, two.url]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda i: chat(urls[i % 2]).status_code, range(8)))
        client = redis.Redis.from_url(REDIS_URL)
        # a lease goes back in the background once its call has answered, so it may trail the answer a moment
        returned = wait_until(lambda: client.zcard(f"{redis_prefix}:shared:inflight:m/a") == 0, 5.0)
    assert codes == [200] * 8  # the others waited for room (ROUTER_QUEUE_TIMEOUT), none was refused
    assert upstream.peak == 2  # never more than max_concurrent at the upstream, whichever process sent it
    assert returned is not None  # every lease was given back


def test_a_circuit_opened_by_one_process_is_avoided_by_the_other_within_a_second(
    tmp_path: Path, redis_prefix: str
) -> None:
    with CountingUpstream.in_thread("a", {"status": 500}) as bad, CountingUpstream.in_thread("b") as good:
        models = {
            "models": [{"id": "m", "route": [vllm(bad, weight=0.5, health_path="none"), vllm(good, "b", weight=0.5)]}]
        }
        env, other = pair_env(
            tmp_path,
            models,
            {"health_check": 0},
            REDIS_URL=REDIS_URL,
            RATE_LIMIT_PREFIX=redis_prefix,
            CIRCUIT_FAILURE_THRESHOLD="1",
            CIRCUIT_COOLDOWN_SECONDS="60",
        )
        with ProcessGateway(env) as one, ProcessGateway(other) as two:
            assert row(two.url)["circuit"] == "closed"
            assert wait_until(lambda: chat(one.url).status_code == 200 and row(one.url)["circuit"] == "open", 10)
            seen = wait_until(lambda: row(two.url)["circuit"] == "open", 2.0)
            assert seen is not None and seen < 1.0, seen
            sent = bad.count
            codes = [chat(two.url).status_code for _ in range(6)]
            assert codes == [200] * 6
            assert bad.count == sent  # the second process never tried the open deployment


def test_a_retry_after_learnt_by_one_process_pauses_the_deployment_in_the_other(
    tmp_path: Path, redis_prefix: str
) -> None:
    with (
        CountingUpstream.in_thread("a", {"status": 429, "retry_after": 30}) as busy,
        CountingUpstream.in_thread("b") as good,
    ):
        route = [vllm(busy, weight=1.0, health_path="none"), vllm(good, "b", weight=0.0001, health_path="none")]
        env, other = pair_env(
            tmp_path,
            {"models": [{"id": "m", "route": route}]},
            {"health_check": 0},
            REDIS_URL=REDIS_URL,
            RATE_LIMIT_PREFIX=redis_prefix,
        )
        with ProcessGateway(env) as one, ProcessGateway(other) as two:
            assert chat(one.url).status_code == 200  # a said 429 + Retry-After: 30, b answered
            assert busy.count == 1
            time.sleep(0.5)  # the news crosses Redis
            codes = [chat(two.url).status_code for _ in range(6)]
            assert codes == [200] * 6
            assert busy.count == 1  # the second process never spent a call to learn the upstream's pause


def test_one_prober_per_deployment_and_its_verdict_reaches_every_process(tmp_path: Path, redis_prefix: str) -> None:
    with CountingUpstream.in_thread("a") as up, CountingUpstream.in_thread("b") as spare:
        models = {"models": [{"id": "m", "route": [vllm(up, weight=0.5), vllm(spare, "b", weight=0.5)]}]}
        env, other = pair_env(
            tmp_path, models, {"health_check": 0.2, "timeout": 1}, REDIS_URL=REDIS_URL, RATE_LIMIT_PREFIX=redis_prefix
        )
        with ProcessGateway(env) as one, ProcessGateway(other) as two:
            time.sleep(0.5)
            before = up.probes
            time.sleep(2.0)
            probes = up.probes - before
            assert 7 <= probes <= 13, probes  # one prober: ~10 probes in 2 s at 0.2 s, not ~20 for two processes
            up.behaviour = {"health_status": 503}
            took = wait_until(lambda: not row(one.url)["available"] and not row(two.url)["available"], 3.0)
            assert took is not None and took < 2.0, took  # two failed probes (0.4 s) and a pub/sub hop
            assert row(two.url)["reason"].startswith("health check failed")
            up.behaviour = {}
            assert wait_until(lambda: row(one.url)["available"] and row(two.url)["available"], 3.0) is not None


class ThrowawayRedis:
    """A redis-server of this test's own on a free port, to kill and restart."""

    def __init__(self, directory: Path) -> None:
        self.port, self.directory = free_port(), directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([*args, "--dir", str(self.directory)], stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        assert wait_until(lambda: _pings(client), 5.0) is not None, "redis-server did not start"
        client.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    try:
        server.start()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    yield server
    server.kill()


def health(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/health", timeout=5).json()
    return body


def test_redis_killed_calls_go_on_degraded_and_sharing_resumes_when_it_returns(
    tmp_path: Path, own_redis: ThrowawayRedis, upstream: CountingUpstream
) -> None:
    models = {"models": [{"id": "m", "rpm": 1000, "route": [vllm(upstream, max_concurrent=2, health_path="none")]}]}
    env, _ = pair_env(tmp_path, models, None, REDIS_URL=own_redis.url, RATE_LIMIT_PREFIX="gw")
    with ProcessGateway(env) as gw:
        assert health(gw.url)["shared_state"] == "ok" and shared_up(gw.url) == 1.0
        assert chat(gw.url).status_code == 200
        own_redis.kill()
        codes = [chat(gw.url).status_code for _ in range(3)]
        assert codes == [200] * 3  # on the process's own limits and count
        assert wait_until(lambda: health(gw.url)["shared_state"] == "degraded: shared state unavailable", 3.0)
        body = health(gw.url)
        assert body["status"] == "degraded"
        assert shared_up(gw.url) == 0.0
        own_redis.start()
        assert wait_until(lambda: health(gw.url)["shared_state"] == "ok", 5.0) is not None
        assert shared_up(gw.url) == 1.0 and health(gw.url)["status"] == "healthy"
        client = redis.Redis.from_url(own_redis.url)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a call in flight holds a lease in the new Redis
            call = pool.submit(chat, gw.url)
            held = wait_until(lambda: client.zcard("gw:shared:inflight:m/a") == 1, 2.0, 0.02)
            assert call.result().status_code == 200
        assert held is not None
        assert client.hlen("gw:model:m:r") >= 1  # and the rate limits count in it again
        # news from another process reaches this one again: the subscription was renewed
        message = {"from": "elsewhere", "kind": "circuit", "key": "m/a", "status": "open", "until": time.time() + 60}
        client.publish("gw:shared:fleet", json.dumps(message))
        assert wait_until(lambda: row(gw.url)["circuit"] == "open", 2.0) is not None
        output = gw.stop()
    outage_lines = [line for line in output.splitlines() if "shared state unavailable" in line]
    assert len(outage_lines) == 1, outage_lines  # logged once per outage, not per call
    assert "Redis is back" in output


def test_redis_fail_closed_refuses_rate_limited_calls_while_redis_is_down(
    tmp_path: Path, own_redis: ThrowawayRedis
) -> None:
    models = {"models": [{"id": "m", "rpm": 1000, "route": [{"kind": "mock"}]}]}
    env, _ = pair_env(tmp_path, models, None, REDIS_URL=own_redis.url, REDIS_FAIL="closed")
    with ProcessGateway(env) as gw:
        assert chat(gw.url).status_code == 200
        own_redis.kill()
        refused = chat(gw.url)
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "rate_limiter_unavailable"
        assert "REDIS_FAIL=closed" in error["message"]
        assert refused.headers["retry-after"] == "1"
        own_redis.start()
        assert wait_until(lambda: chat(gw.url).status_code == 200, 5.0) is not None


def test_several_workers_without_redis_warn_how_much_the_limits_multiply(tmp_path: Path) -> None:
    models = {"models": [{"id": "m", "route": [{"kind": "mock", "name": "gpu", "max_concurrent": 8}]}]}
    env = {**base_env(tmp_path), **write_config(tmp_path, models)}
    gw = ProcessGateway(env, workers=2)
    try:
        gw.start(timeout=120)  # two workers importing at once on a busy machine
        assert chat(gw.url).status_code == 200
    finally:
        output = gw.stop()
    warning = [line for line in output.splitlines() if "no REDIS_URL" in line]
    assert len(warning) == 1, output  # once, from the supervisor, not once per worker
    assert "up to 2x what is configured" in warning[0]
    assert "m/gpu max_concurrent: 8 admits 16 calls" in warning[0]


def test_one_process_without_redis_says_nothing_of_shared_state(tmp_path: Path) -> None:
    models = {"models": [{"id": "m", "route": [{"kind": "mock"}]}]}
    env = {**base_env(tmp_path), **write_config(tmp_path, models)}
    with ProcessGateway(env) as gw:
        assert health(gw.url)["shared_state"] == "not configured"
        assert shared_up(gw.url) is None
        output = gw.stop()
    assert "REDIS_URL" not in output


def test_the_engine_load_page_is_scraped_once_for_the_fleet_and_read_by_every_process(
    tmp_path: Path, redis_prefix: str
) -> None:
    with VllmTwin.in_thread("gpu-a", TwinSpec(model="tiny-llama")) as twin, FakeUpstream.in_thread("cloud") as cloud:
        models, routing = hybrid_config([twin], [cloud], scrape_interval=0.1, scrape_timeout=0.1)
        env, other = pair_env(tmp_path, models, routing, REDIS_URL=REDIS_URL, RATE_LIMIT_PREFIX=redis_prefix)
        with ProcessGateway(env) as one, ProcessGateway(other) as two:
            time.sleep(0.5)
            before = twin.scrapes
            time.sleep(2.0)
            scrapes = twin.scrapes - before
            assert 12 <= scrapes <= 26, scrapes  # ~20 for one scraper at 0.1 s, not ~40 for two processes
            twin.override(waiting=5)
            gauge = 'gateway_deployment_load{deployment="gpu-a",signal="waiting"} 5.0'
            for url in (one.url, two.url):
                took = wait_until(lambda u=url: gauge in httpx.get(f"{u}/metrics", timeout=5).text, 3.0)
                assert took is not None, url


def test_a_half_open_circuit_sends_one_trial_for_the_whole_fleet(tmp_path: Path, redis_prefix: str) -> None:
    with CountingUpstream.in_thread("a", {"status": 500}) as up:
        models = {"models": [{"id": "m", "route": [vllm(up, health_path="none")]}]}
        env, other = pair_env(
            tmp_path,
            models,
            {"health_check": 0},
            REDIS_URL=REDIS_URL,
            RATE_LIMIT_PREFIX=redis_prefix,
            CIRCUIT_FAILURE_THRESHOLD="1",
            CIRCUIT_COOLDOWN_SECONDS="1",
            ROUTER_MAX_ATTEMPTS="1",
        )
        with ProcessGateway(env) as one, ProcessGateway(other) as two:
            assert chat(one.url).status_code == 502
            assert wait_until(lambda: row(two.url)["circuit"] == "open", 2.0) is not None
            up.behaviour = {"delay_headers": 2.0}  # recovered, and slow enough for every call to meet the trial
            time.sleep(1.3)  # the cooldown is over in both processes
            sent = up.count
            urls = [one.url, two.url] * 3
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                codes = list(pool.map(lambda u: chat(u).status_code, urls))
            assert up.count - sent == 1, codes  # one trial, not one per process
            assert up.peak == 1
            assert sorted(codes) == [200, 503, 503, 503, 503, 503]
            assert wait_until(lambda: row(one.url)["circuit"] == "closed" == row(two.url)["circuit"], 2.0)
