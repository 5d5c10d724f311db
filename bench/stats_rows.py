"""A call log of N synthetic rows (SQLite), written with the gateway's own schema and value encoding.

Used by the `stats1m` scenario: `GET /stats` must be computed in the database and stay fast on a million rows.
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine

from gateway.calllog.record import AttemptRecord, CallRecord
from gateway.calllog.rows import record_to_row
from gateway.calllog.schema import ensure_schema
from gateway.calllog.sqlite_bulk import bind_processors, flatten, insert_sql

MODELS = ("llama-3.3-70b-instruct", "deepseek-chat", "gemini-2.5-flash", "mock-gpt", "llama3.2-1b")
PROVIDERS = ("local", "deepseek", "gemini", "llama")


def build_sqlite_log(path: Path, rows: int, hours: float = 48.0, seed: int = 7) -> float:
    """Create `path` with the gateway's schema and `rows` calls spread over the last `hours`; returns seconds."""
    began = time.monotonic()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        ensure_schema(conn)
    binds = bind_processors(engine.dialect)
    engine.dispose()
    rng = random.Random(seed)
    now = time.time()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # a bench fixture, not the gateway's write path
    sql = insert_sql(1)
    conn.execute("BEGIN")
    batch: list[tuple[object, ...]] = []
    for i in range(rows):
        record = _record(rng, now - rng.random() * hours * 3600, i)
        batch.append(flatten([record_to_row(record, log_content=False)], binds))
        if len(batch) == 10_000:
            conn.executemany(sql, batch)
            batch.clear()
    if batch:
        conn.executemany(sql, batch)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return time.monotonic() - began


def _record(rng: random.Random, started: float, i: int) -> CallRecord:
    ok = rng.random() > 0.03
    latency = rng.lognormvariate(6.0, 0.6)
    prompt, completion = rng.randint(10, 2_000), rng.randint(1, 800)
    return CallRecord(
        request_id=f"gen-{uuid.UUID(int=rng.getrandbits(128)).hex}",
        started_at=started,
        model_id=MODELS[i % len(MODELS)],
        provider=PROVIDERS[rng.randrange(len(PROVIDERS))],
        deployment="bench",
        stream=i % 3 == 0,
        status_code=200 if ok else 502,
        latency_ms=latency,
        ttft_ms=latency * rng.uniform(0.05, 0.4),
        prompt_tokens=prompt if ok else 0,
        completion_tokens=completion if ok else 0,
        total_tokens=prompt + completion if ok else 0,
        cost_usd=(prompt * 0.6 + completion * 1.2) / 1e6 if ok else 0.0,
        error="" if ok else "bench: upstream failed",
        attempts=(AttemptRecord("bench", "local", "ok" if ok else "error", 200 if ok else 502, latency),),
    )


async def build_postgres_log(url: str, rows: int, hours: float = 48.0, seed: int = 7) -> float:
    """Create (afresh) `api_logs` with the gateway's schema in the database at `url`, COPY `rows` calls in."""
    import asyncpg  # the gateway's PostgreSQL driver
    from sqlalchemy.ext.asyncio import create_async_engine

    from gateway.calllog.schema import COLUMN_NAMES
    from gateway.calllog.settings import postgres_async_url

    began = time.monotonic()
    engine = create_async_engine(postgres_async_url(url))
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE IF EXISTS api_logs")
        await conn.run_sync(ensure_schema)
    await engine.dispose()
    rng = random.Random(seed)
    now = time.time()
    conn = await asyncpg.connect(url)
    try:
        batch: list[tuple[object, ...]] = []
        for i in range(rows):
            row = record_to_row(_record(rng, now - rng.random() * hours * 3600, i), log_content=False)
            batch.append(tuple(row.get(name) for name in COLUMN_NAMES))
            if len(batch) == 50_000 or i == rows - 1:
                await conn.copy_records_to_table("api_logs", records=batch, columns=list(COLUMN_NAMES))
                batch.clear()
        await conn.execute("ANALYZE api_logs")
    finally:
        await conn.close()
    return time.monotonic() - began
