"""The call log's schema: SQLite in WAL mode, and the indexes /stats and view_logs rely on, on both backends."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy import text

from tests.conftest import GatewayFactory
from tests.integration.storage.conftest import Target

MOCK = {"models": [{"id": "mock", "route": [{"kind": "mock", "mock": {"completion_tokens": 3}}]}]}
# index name -> its columns, as gateway/storage/schema.py declares them
WANTED = {
    "ix_api_logs_timestamp": ["timestamp"],
    "ix_api_logs_model_id": ["model_id"],
    "ix_api_logs_provider": ["provider"],
}
SQLITE_ONLY = {"ix_api_logs_sqlite_latency", "ix_api_logs_sqlite_ttft"}


def sqlite_indexes(conn: sqlite3.Connection) -> dict[str, list[str]]:
    names = [row[1] for row in conn.execute("PRAGMA index_list('api_logs')")]
    return {name: [row[2] for row in conn.execute(f"PRAGMA index_info('{name}')")] for name in names}


def test_gateway_creates_a_wal_sqlite_log_with_its_indexes(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK)
    path = Path(gw.settings.env["SQLITE_DB_PATH"])
    assert path.is_file()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = sqlite_indexes(conn)
    finally:
        conn.close()
    assert {name: indexes.get(name) for name in WANTED} == WANTED
    assert SQLITE_ONLY <= set(indexes)
    assert ["request_id"] in indexes.values()  # the UNIQUE constraint's autoindex: duplicates are ignored


async def test_schema_has_the_indexes_on_each_backend(target: Target) -> None:
    log = target.call_log(sync=True)
    await log.start()
    await log.close()
    async with (await target.reader()).connect() as conn:
        if target.backend == "sqlite":
            names = [r[1] for r in await conn.execute(text("PRAGMA index_list('api_logs')"))]
            indexes = {n: [r[2] for r in await conn.execute(text(f"PRAGMA index_info('{n}')"))] for n in names}
        else:
            result = await conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes "
                    "WHERE schemaname = current_schema() AND tablename = 'api_logs'"
                )
            )
            indexes = {name: _pg_columns(ddl) for name, ddl in result}
    assert {name: indexes.get(name) for name in WANTED} == WANTED
    if target.backend == "postgresql":
        assert not SQLITE_ONLY & set(indexes), "the SQLite percentile indexes are not built on PostgreSQL"
    else:
        assert SQLITE_ONLY <= set(indexes)


def _pg_columns(indexdef: str) -> list[str]:
    """`CREATE INDEX ix ON s.api_logs USING btree ("timestamp")` -> ["timestamp"]."""
    match = re.search(r"\(([^()]*)\)\s*$", indexdef)
    assert match, indexdef
    return [column.strip().strip('"') for column in match.group(1).split(",")]
