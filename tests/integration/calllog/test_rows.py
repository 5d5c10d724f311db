"""Every call leaves the right row, on SQLite and on PostgreSQL, through a real gateway."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time

import httpx
import openai

from tests.conftest import GatewayFactory
from tests.integration.calllog.conftest import LogBackend, pg_outage
from tests.integration.core.conftest import models, route

MESSAGES = [{"role": "user", "content": "What is the answer?"}]


def attempts(row: dict) -> list[dict]:
    value = row["attempts"]
    return json.loads(value) if isinstance(value, str) else value


def test_streamed_and_non_streamed_rows_are_equally_complete(
    gateway_factory: GatewayFactory, upstreams, log_backend: LogBackend
) -> None:
    a, _ = upstreams
    a.behaviour = {"reasoning_tokens": 3, "cached_tokens": 2}
    gw = gateway_factory(models(route(a)), **log_backend.env)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0)
    whole = client.chat.completions.with_raw_response.create(
        model="m",
        messages=MESSAGES,
        temperature=0.5,
        top_p=0.9,
        max_tokens=50,
        seed=42,
        user="user-7",
        extra_headers={"X-Session-Id": "sess-1"},
    )
    with httpx.stream(
        "POST", f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True}
    ) as resp:
        stream_id = resp.headers["x-request-id"]
        resp.read()
    plain = log_backend.row(whole.headers["x-request-id"])
    streamed = log_backend.row(stream_id)
    for row in (plain, streamed):
        assert row["provider"] == "openai" and row["deployment"] == "a" and row["model_id"] == "m"
        assert row["status_code"] == 200 and row["error"] in ("", None)
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
        assert row["reasoning_tokens"] == 3 and row["cached_tokens"] == 2
        assert float(row["cost_usd"]) > 0 and row["latency_ms"] > 0 and row["ttft_ms"] is not None
        assert row["finish_reason"] == "stop" and row["response"].startswith("[a]")
        assert json.loads(row["prompt"]) == MESSAGES
        assert [x["outcome"] for x in attempts(row)] == ["ok"]
        assert not row["fallback_used"]
    assert not plain["stream"] and streamed["stream"]
    assert plain["temperature"] == 0.5 and plain["top_p"] == 0.9 and plain["max_tokens"] == 50 and plain["seed"] == 42
    assert plain["user_id"] == "user-7" and plain["session_id"] == "sess-1"
    assert streamed["completion_tokens"] == plain["completion_tokens"]
    assert streamed["response"] == plain["response"]


def test_fallback_failed_and_cancelled_calls(
    gateway_factory: GatewayFactory, upstreams, log_backend: LogBackend
) -> None:
    a, b = upstreams
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)), **log_backend.env)
    a.behaviour = {"status": 500}
    ok = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
    row = log_backend.row(ok.headers["x-request-id"])
    assert row["fallback_used"] and row["deployment"] == "b"
    assert [x["deployment"] for x in attempts(row)] == ["a", "b"]
    assert attempts(row)[0]["status_code"] == 500
    b.behaviour = {"status": 503}
    failed = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
    assert failed.status_code == 502
    row = log_backend.row(failed.headers["x-request-id"])
    assert row["status_code"] == 502 and "failed" in row["error"] and "sk-test" not in row["error"]
    b.behaviour = {}
    slow = {"*": {"chunks": 40, "chunk_delay": 0.05}}
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": "m", "messages": MESSAGES, "stream": True, "x_test": slow},
    ) as resp:
        cancelled_id = resp.headers["x-request-id"]
        for _ in resp.iter_bytes():
            break
    deadline = time.monotonic() + 5
    while not [r for r in log_backend.rows() if r["request_id"] == cancelled_id] and time.monotonic() < deadline:
        time.sleep(0.05)
    row = log_backend.row(cancelled_id)
    assert row["status_code"] == 499 and "disconnect" in row["error"]
    assert [x["outcome"] for x in attempts(row)][-1] == "cancelled"


def test_content_logging_off(gateway_factory: GatewayFactory, upstreams, log_backend: LogBackend) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)), LOG_CONTENT="false", **log_backend.env)
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
    row = log_backend.row(resp.headers["x-request-id"])
    assert row["prompt"] is None and row["response"] is None and row["completion_tokens"] > 0


def test_stats_and_generation_endpoints(gateway_factory: GatewayFactory, upstreams, log_backend: LogBackend) -> None:
    a, b = upstreams
    gw = gateway_factory(models(route(a, 0.5), route(b, 0.5)), **log_backend.env)
    ids = [
        httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES}).headers["x-request-id"]
        for _ in range(6)
    ]
    stats = httpx.get(f"{gw.url}/stats", params={"hours": 1}).json()["stats"]
    assert sum(s["requests"] for s in stats) == 6 and sum(s["successes"] for s in stats) == 6
    assert all(s["latency_p50_ms"] is not None and s["cost_usd"] > 0 for s in stats)
    only = httpx.get(f"{gw.url}/stats", params={"hours": 1, "model": "m", "provider": "openai"}).json()
    assert only["filters"] == {"model": "m", "provider": "openai"}
    generation = httpx.get(f"{gw.url}/api/v1/generation", params={"id": ids[0]}).json()["data"]
    assert generation["id"] == ids[0] and generation["model"] == "m" and generation["tokens_completion"] > 0
    assert httpx.get(f"{gw.url}/api/v1/generation", params={"id": "gen-missing"}).status_code == 404


def test_database_outage_loses_nothing_and_slows_nothing(
    gateway_factory: GatewayFactory, log_backend: LogBackend
) -> None:
    config = {"models": [{"id": "m", "route": [{"kind": "mock", "mock": {"completion_tokens": 4}}]}]}
    gw = gateway_factory(
        config, CALL_LOG_SYNC="false", CALL_LOG_RETRY_MAX_MS="500", CALL_LOG_FLUSH_MS="50", **log_backend.env
    )
    body = {"model": "m", "messages": MESSAGES}
    sent: list[str] = []
    timings: dict[str, list[float]] = {"before": [], "during": [], "after": []}

    def burst(phase: str, n: int) -> None:
        with httpx.Client(base_url=gw.url, timeout=10) as http:
            for _ in range(n):
                started = time.perf_counter()
                resp = http.post("/v1/chat/completions", json=body)
                timings[phase].append(time.perf_counter() - started)
                assert resp.status_code == 200
                sent.append(resp.headers["x-request-id"])

    burst("before", 30)
    lock: sqlite3.Connection | None = None
    if log_backend.sqlite_path is not None:  # a writer holding the file exclusively: inserts fail with "locked"
        lock = sqlite3.connect(log_backend.sqlite_path, timeout=1, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
    else:
        pg_outage(log_backend, down=True)
    try:
        burst("during", 60)
        time.sleep(1.0)  # let the writer notice and start retrying
        burst("during", 30)
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
        else:
            pg_outage(log_backend, down=False)
    burst("after", 30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logged = {r["request_id"] for r in log_backend.rows()}
        if set(sent) <= logged:
            break
        time.sleep(0.2)
    logged_rows = [r["request_id"] for r in log_backend.rows()]
    assert sorted(logged_rows) == sorted(sent), f"{len(set(sent) - set(logged_rows))} calls missing"
    counters = httpx.get(f"{gw.url}/health").json()["call_log"]
    assert counters["rows_lost"] == 0
    # the outage did not slow requests: the request path never waits for the database
    assert statistics.median(timings["during"]) < max(0.05, 5 * statistics.median(timings["before"]))
    assert max(timings["during"]) < 1.0
