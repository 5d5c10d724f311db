"""An `api_logs` table created by the original gateway is upgraded in place, keeping its rows."""

from __future__ import annotations

from tests.integration.storage.conftest import Target, make_record

# The original's DDL (serving/storage/database_sqlite.py and the early PostgreSQL logger), including the
# NOT NULL on prompt that LOG_CONTENT=false must get past, and the summary view over the table.
_LEGACY = {
    "sqlite": [
        """CREATE TABLE api_logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
            request_id TEXT UNIQUE,
            model_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            prompt TEXT NOT NULL,
            response JSON,
            prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER,
            latency_ms REAL, status_code INTEGER, error TEXT, user_id TEXT, session_id TEXT,
            metadata JSON, temperature REAL, top_p REAL, max_tokens INTEGER, seed INTEGER,
            prompt_hash TEXT)""",
        "CREATE INDEX idx_timestamp ON api_logs(timestamp DESC)",
        "CREATE INDEX idx_model ON api_logs(model_id)",
        """CREATE VIEW api_logs_summary AS SELECT DATE(timestamp) AS date, model_id, provider,
            COUNT(*) AS total_requests FROM api_logs GROUP BY DATE(timestamp), model_id, provider""",
        """INSERT INTO api_logs (timestamp, request_id, model_id, provider, prompt, prompt_hash, latency_ms,
            status_code) VALUES ('2025-01-02 03:04:05', 'req_1', 'm', 'p', '[]', 'h', 12.5, 200)""",
    ],
    "postgresql": [
        """CREATE TABLE api_logs (
            id BIGSERIAL PRIMARY KEY,
            timestamp TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            request_id VARCHAR(255) UNIQUE NOT NULL,
            model_id VARCHAR(255) NOT NULL,
            provider VARCHAR(100) NOT NULL,
            prompt TEXT NOT NULL,
            response TEXT,
            prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER,
            latency_ms INTEGER, status_code INTEGER, error TEXT, metadata JSONB,
            cost_usd DECIMAL(12, 8), prompt_hash VARCHAR(64))""",
        "CREATE INDEX idx_api_logs_timestamp ON api_logs(timestamp DESC)",
        """INSERT INTO api_logs (timestamp, request_id, model_id, provider, prompt, prompt_hash, latency_ms,
            status_code) VALUES ('2025-01-02 03:04:05+00', 'req_1', 'm', 'p', '[]', 'h', 12, 200)""",
    ],
}


async def test_legacy_table_is_migrated(target: Target) -> None:
    for statement in _LEGACY[target.backend]:
        await target.execute(statement)

    log = target.call_log(sync=True, log_content=False)
    await log.start()
    record = make_record(prompt="not stored", cost_usd=0.25)
    await log.write(record)
    await log.write(record)  # a duplicate is ignored, not an error
    stats = await log.stats(24 * 365 * 100, None, None)
    await log.close()

    rows = await target.rows()
    assert [r["request_id"] for r in rows] == ["req_1", record.request_id]
    assert rows[0]["latency_ms"] == 12.5 if target.backend == "sqlite" else 12
    assert rows[1]["prompt"] is None
    assert rows[1]["attempts"] is not None
    assert (rows[0]["routing_reason"], rows[1]["routing_reason"]) == (None, "fallback")  # a column added in place
    assert log.counters()["rows_written"] == 2
    assert log.counters()["rows_rejected"] == log.counters()["rows_lost"] == 0
    assert sum(s["requests"] for s in stats) == 2
    assert any(s["cost_usd"] == 0.25 for s in stats)
    if target.backend == "sqlite":
        await target.execute("SELECT * FROM api_logs_summary")  # the view survived the rebuild
        await target.execute("SELECT prompt_hash FROM api_logs")  # so did the column we do not know
