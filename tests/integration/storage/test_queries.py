"""`/stats` and `/api/v1/generation` queries on known data, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.integration.storage.conftest import Target, make_record


async def _fill(target: Target) -> None:
    log = target.call_log(sync=True)
    await log.start()
    now = time.time()
    for i in range(1, 101):
        await log.write(
            make_record(
                model_id="a",
                provider="p",
                latency_ms=float(i),
                ttft_ms=float(i) if i % 10 == 0 else None,
                status_code=200 if i <= 90 else 500,
                prompt_tokens=1,
                completion_tokens=2,
                total_tokens=3,
                cost_usd=0.5,
                started_at=now - i,
            )
        )
    for latency in (10.0, 20.0, 30.0):
        await log.write(make_record(model_id="b", provider="q", latency_ms=latency, ttft_ms=None, started_at=now))
    # Outside a 24 h window: must not count.
    await log.write(make_record(model_id="a", provider="p", latency_ms=1e6, started_at=now - 48 * 3600))
    await log.close()


async def test_stats_per_model_and_provider(target: Target) -> None:
    await _fill(target)
    log = target.call_log()
    await log.start()
    stats = await log.stats(24, None, None)
    only_b = await log.stats(24, "b", None)
    only_q = await log.stats(24, None, "q")
    none = await log.stats(24, "a", "q")
    await log.close()

    assert [(s["model_id"], s["provider"]) for s in stats] == [("a", "p"), ("b", "q")]
    a, b = stats
    assert (a["requests"], a["successes"], a["errors"]) == (100, 90, 10)
    assert (a["prompt_tokens"], a["completion_tokens"], a["total_tokens"]) == (100, 200, 300)
    assert a["cost_usd"] == pytest.approx(50.0)
    assert a["latency_avg_ms"] == pytest.approx(50.5)
    assert a["latency_p50_ms"] == pytest.approx(50.5)  # percentile_cont: halfway between 50 and 51
    assert a["latency_p95_ms"] == pytest.approx(95.05)
    assert a["ttft_p50_ms"] == pytest.approx(55.0)  # only the ten rows with a TTFT count
    assert b["requests"] == 3
    assert b["latency_p50_ms"] == pytest.approx(20.0)
    assert b["latency_p95_ms"] == pytest.approx(29.0)
    assert b["ttft_p50_ms"] is None
    assert only_b == only_q == [b]
    assert none == []


async def test_generation_lookup(target: Target) -> None:
    log = target.call_log(sync=True)
    await log.start()
    record = make_record(latency_ms=250.0, ttft_ms=50.0, error="")
    await log.write(record)
    found = await log.generation(record.request_id)
    missing = await log.generation("gen-unknown")
    await log.close()

    assert missing is None
    assert found is not None
    assert found["id"] == record.request_id
    assert found["model"] == record.model_id
    assert found["provider_name"] == "local"
    assert found["deployment"] == "local-vllm-a"
    assert found["streamed"] is True
    assert found["cancelled"] is False
    assert datetime.fromisoformat(found["created_at"]) == datetime.fromtimestamp(record.started_at, tz=UTC)
    assert found["latency"] == 250.0
    assert found["generation_time"] == 200.0
    assert found["finish_reason"] == "stop"
    assert (found["tokens_prompt"], found["tokens_completion"]) == (10, 20)
    assert (found["native_tokens_reasoning"], found["native_tokens_cached"]) == (3, 4)
    assert found["total_cost"] == pytest.approx(0.00012345)
    assert found["provider_responses"] == [a.as_dict() for a in record.attempts]
    assert found["status_code"] == 200
    assert found["error"] is None
    assert found["fallback_used"] is True


async def test_generation_sees_a_queued_record(target: Target) -> None:
    log = target.call_log(flush_interval_s=30.0, batch_size=10_000)
    await log.start()
    record = make_record()
    await log.write(record)
    found = await log.generation(record.request_id)
    await log.close()
    assert found is not None and found["id"] == record.request_id
