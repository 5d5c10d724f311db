"""The call-log writer against real databases: every row arrives, exactly once, even across an outage."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson

from gateway.calllog.rows import record_to_row
from gateway.calllog.spool import Spool
from gateway.calllog.sqlite_bulk import CHUNK_SIZES
from tests.integration.storage.conftest import Target, make_record


async def _wait_for_count(target: Target, expected: int, seconds: float = 10.0) -> int:
    deadline = time.monotonic() + seconds
    count = -1
    while count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        try:
            count = await target.count()
        except Exception:  # the writer has not created the table yet
            count = -1
    return count


async def test_row_has_every_field(target: Target) -> None:
    log = target.call_log(sync=True)
    await log.start()
    record = make_record()
    await log.write(record)
    rows = await target.rows()
    await log.close()

    assert len(rows) == 1
    row = rows[0]
    assert row["request_id"] == record.request_id
    assert row["timestamp"] == datetime.fromtimestamp(record.started_at, tz=UTC)
    for name in ("model_id", "provider", "deployment", "endpoint", "stream", "status_code", "latency_ms", "ttft_ms"):
        assert row[name] == getattr(record, name), name
    for name in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "total_tokens"):
        assert row[name] == getattr(record, name), name
    for name in ("cost_usd", "finish_reason", "fallback_used", "temperature", "top_p", "max_tokens", "seed"):
        assert row[name] == getattr(record, name), name
    for name in ("user_id", "session_id", "api_key_name", "client_ip", "prompt", "response", "routing_reason"):
        assert row[name] == getattr(record, name), name
    assert orjson.loads(row["attempts"]) == [a.as_dict() for a in record.attempts]
    assert orjson.loads(row["metadata"]) == record.metadata
    assert row["error"] is None


async def test_content_off_stores_null(target: Target) -> None:
    log = target.call_log(sync=True, log_content=False)
    await log.start()
    await log.write(make_record(prompt="secret prompt", response="secret answer"))
    rows = await target.rows()
    await log.close()

    assert rows[0]["prompt"] is None
    assert rows[0]["response"] is None


async def test_batches_write_every_row(target: Target) -> None:
    log = target.call_log(batch_size=500, queue_max=10_000)
    await log.start()
    records = [make_record(i) for i in range(5_000)]
    for record in records:
        await log.write(record)
    await log.flush()

    assert await target.count() == 5_000
    counters = log.counters()
    assert counters["rows_written"] == 5_000
    assert counters["batches"] >= 10
    assert counters["rows_lost"] == counters["rows_spooled"] == 0
    await log.close()


async def test_replay_is_idempotent(target: Target) -> None:
    first = [make_record(i) for i in range(10)]
    log = target.call_log(sync=True)
    await log.start()
    for record in first[:6]:
        await log.write(record)
    await log.close()
    # A replay after a partial failure: the spool holds rows already committed plus rows that are not.
    Spool(target.settings.spool_dir).append([record_to_row(r, log_content=True) for r in first])

    log = target.call_log()
    await log.start()
    await log.flush()
    await log.close()

    rows = await target.rows()
    assert sorted(r["request_id"] for r in rows) == sorted(r.request_id for r in first)
    assert not Spool(target.settings.spool_dir).has_pending()


async def test_outage_keeps_every_row_and_write_stays_fast(target: Target) -> None:
    target.down()
    log = target.call_log(batch_size=100)
    await log.start()  # must not raise with the database down

    records = [make_record(i) for i in range(1_000)]
    slowest = 0.0
    started = time.perf_counter()
    for record in records:
        t0 = time.perf_counter()
        await log.write(record)
        slowest = max(slowest, time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    await log.flush()

    assert elapsed < 1.0, f"1,000 writes took {elapsed:.3f}s during the outage"
    assert slowest < 0.05
    counters = log.counters()
    assert counters["rows_spooled"] == 1_000
    assert counters["write_errors"] >= 1
    assert Spool(target.settings.spool_dir).has_pending()

    target.up()
    assert await _wait_for_count(target, 1_000) == 1_000
    await log.flush()
    assert not Spool(target.settings.spool_dir).has_pending()
    await log.close()
    assert log.counters()["rows_lost"] == 0
    assert sorted(r["request_id"] for r in await target.rows()) == sorted(r.request_id for r in records)


async def test_sync_write_during_outage_is_kept(target: Target) -> None:
    log = target.call_log(sync=True)
    target.down()
    await log.start()  # must not raise
    record = make_record()
    await log.write(record)
    assert log.counters()["rows_spooled"] == 1

    target.up()
    await asyncio.sleep(target.settings.retry_max_s * 2)
    await log.flush()
    await log.close()
    assert [r["request_id"] for r in await target.rows()] == [record.request_id]


async def test_close_flushes_the_queue(target: Target) -> None:
    # A long flush interval: without close() draining the queue, rows would still be waiting.
    log = target.call_log(flush_interval_s=30.0, batch_size=10_000)
    await log.start()
    for i in range(250):
        await log.write(make_record(i))
    await log.close()

    assert await target.count() == 250
    assert log.counters()["rows_written"] == 250


async def test_spool_is_replayed_on_next_start(target: Target) -> None:
    target.down()
    log = target.call_log()
    await log.start()
    records = [make_record(i) for i in range(50)]
    for record in records:
        await log.write(record)
    await log.close()
    assert log.counters()["rows_spooled"] == 50
    assert Spool(target.settings.spool_dir).has_pending()

    target.up()
    log = target.call_log()
    await log.start()
    await log.flush()
    await log.close()
    assert await target.count() == 50
    assert not Spool(target.settings.spool_dir).has_pending()


async def test_writes_after_close_are_spooled(target: Target) -> None:
    log = target.call_log()
    await log.start()
    await log.close()
    await log.write(make_record())
    assert log.counters()["rows_spooled"] == 1
    assert log.counters()["rows_lost"] == 0


async def test_batch_larger_than_one_insert_statement(target: Target) -> None:
    # SQLite cuts a batch into multi-row INSERTs of a few fixed sizes; every row must land, once.
    size = 2 * CHUNK_SIZES[0] + 3 * 64 + 7
    log = target.call_log(batch_size=size, queue_max=10_000, flush_interval_s=1.0)
    await log.start()
    records = [make_record(i) for i in range(size)]
    for record in records:
        await log.write(record)
    await log.flush()
    await log.close()

    assert await target.count() == len(records)
    assert log.counters()["batches"] == 1
    assert sorted(r["request_id"] for r in await target.rows()) == sorted(r.request_id for r in records)


async def test_a_refused_row_is_set_aside_and_the_rest_of_its_batch_written(target: Target) -> None:
    good = [record_to_row(make_record(i), log_content=True) for i in range(20)]
    bad = {**record_to_row(make_record(99), log_content=True), "model_id": None}  # NOT NULL: refused for good
    Spool(target.settings.spool_dir).append([*good[:10], bad, *good[10:]])

    log = target.call_log()
    await log.start()
    await log.flush()
    await log.close()

    counters = log.counters()
    assert counters["rows_rejected"] == 1
    assert counters["rows_lost"] == 0
    assert sorted(r["request_id"] for r in await target.rows()) == sorted(r["request_id"] for r in good)
    rejected = list(target.settings.spool_dir.glob("rejected-*.jsonl"))
    assert [orjson.loads(line)["request_id"] for p in rejected for line in p.read_bytes().splitlines()] == [
        bad["request_id"]
    ]
