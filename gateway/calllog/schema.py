"""The `api_logs` table, and the create/migrate step shared by SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    inspect,
)
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("gateway.calllog")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends.

    SQLite has no timezone type: values are stored as naive UTC text, which also matches the original's
    `CURRENT_TIMESTAMP` rows and sorts correctly as text.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only makes INTEGER PRIMARY KEY a rowid alias, so the BIGSERIAL-style id needs a variant.
_ID = BigInteger().with_variant(Integer(), "sqlite")

metadata_obj = MetaData()

api_logs = Table(
    "api_logs",
    metadata_obj,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("request_id", Text, nullable=False, unique=True),
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("model_id", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("deployment", Text),
    Column("endpoint", Text),
    Column("stream", Boolean),
    Column("status_code", Integer),
    Column("error", Text),
    Column("latency_ms", Double),
    Column("ttft_ms", Double),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("reasoning_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("total_tokens", Integer),
    Column("cost_usd", Double),
    Column("finish_reason", Text),
    Column("attempts", Text),  # JSON list of AttemptRecord.as_dict()
    Column("fallback_used", Boolean),
    Column("temperature", Double),
    Column("top_p", Double),
    Column("max_tokens", BigInteger),  # client-supplied, so int64 rather than int32
    Column("seed", BigInteger),
    Column("user_id", Text),
    Column("session_id", Text),
    Column("api_key_name", Text),
    Column("client_ip", Text),
    Column("prompt", Text),
    Column("response", Text),
    Column("metadata", Text),  # JSON object; a Core column may be named "metadata", unlike a declarative attribute
    Column("routing_reason", Text),  # weighted, local, affinity, spill:queue, spill:kv, fallback
    Index("ix_api_logs_timestamp", "timestamp"),
    Index("ix_api_logs_model_id", "model_id"),
    Index("ix_api_logs_provider", "provider"),
    # SQLite has no percentile_cont: /stats seeks percentiles in these covering indexes (see stats.py).
    Index("ix_api_logs_sqlite_latency", "model_id", "provider", "latency_ms", "timestamp").ddl_if(dialect="sqlite"),
    Index("ix_api_logs_sqlite_ttft", "model_id", "provider", "ttft_ms", "timestamp").ddl_if(dialect="sqlite"),
    sqlite_autoincrement=True,
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in api_logs.columns if c.name != "id")


def ensure_schema(conn: Connection) -> frozenset[str]:
    """Create `api_logs` if missing; otherwise add missing columns and indexes and relax NOT NULLs.

    Returns the columns a legacy table declares as JSON/JSONB (the original's `metadata`), which inserts
    must cast on PostgreSQL.

    Runs inside one transaction (via `AsyncConnection.run_sync`). It never drops data or columns, and it
    never builds an index that an existing one already covers (same leading columns): index builds on a
    big production table are what overloaded databases in litellm#11683.
    """
    inspector = inspect(conn)
    if not inspector.has_table("api_logs"):
        metadata_obj.create_all(conn, tables=[api_logs])
        log.info("created table api_logs")
        return frozenset()
    existing = {c["name"]: c for c in inspector.get_columns("api_logs")}
    json_columns = frozenset(n for n, c in existing.items() if isinstance(c["type"], JSON) and n in api_logs.c)
    quote = conn.dialect.identifier_preparer.quote
    for column in api_logs.columns:
        if column.name not in existing and not column.primary_key:
            ddl = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE api_logs ADD COLUMN {quote(column.name)} {ddl}")
            log.info("api_logs: added column %s", column.name)
    # The original declared prompt NOT NULL; LOG_CONTENT=false writes NULL there.
    not_null = {name for name, info in existing.items() if not info["nullable"]}
    strict = [c.name for c in api_logs.columns if c.nullable and c.name in not_null]
    if strict and conn.dialect.name == "sqlite":
        extra = {n: c["type"].compile(dialect=conn.dialect) for n, c in existing.items() if n not in api_logs.c}
        _rebuild_sqlite(conn, [n for n in existing if n in api_logs.c], extra)
        log.info("api_logs: rebuilt to drop NOT NULL on %s", ", ".join(strict))
        return json_columns
    for name in strict:
        conn.exec_driver_sql(f"ALTER TABLE api_logs ALTER COLUMN {quote(name)} DROP NOT NULL")
        log.info("api_logs: dropped NOT NULL on %s", name)
    _ensure_indexes(conn)
    return json_columns


def _ensure_indexes(conn: Connection) -> None:
    inspector = inspect(conn)
    indexes = inspector.get_indexes("api_logs")
    indexed = [tuple(str(c) for c in i["column_names"]) for i in indexes]
    unique = [tuple(str(c) for c in u["column_names"]) for u in inspector.get_unique_constraints("api_logs")]
    unique += [tuple(str(c) for c in i["column_names"]) for i in indexes if i["unique"]]
    for index in api_logs.indexes:
        wanted = tuple(c.name for c in index.columns)
        if index.name and index.name.startswith("ix_api_logs_sqlite_") and conn.dialect.name != "sqlite":
            continue
        if not any(cols[: len(wanted)] == wanted for cols in indexed + unique):
            index.create(conn)
            log.info("api_logs: created index %s", index.name)
    if ("request_id",) not in unique:
        # Duplicates in legacy data make this fail; inserts use an untargeted ON CONFLICT DO NOTHING,
        # so logging still works, only without deduplication on that old table.
        try:
            with conn.begin_nested():
                conn.exec_driver_sql("CREATE UNIQUE INDEX ux_api_logs_request_id ON api_logs (request_id)")
        except Exception as exc:  # any driver error: the table stays usable
            log.warning("api_logs: cannot add UNIQUE(request_id): %s", type(exc).__name__)


def _rebuild_sqlite(conn: Connection, keep: list[str], extra: dict[str, str]) -> None:
    """SQLite cannot drop a NOT NULL in place: copy into a fresh table (SQLite's documented 12-step way)."""
    views: list[tuple[str, str]] = [
        (str(r[0]), str(r[1]))
        for r in conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'view' AND sql LIKE '%api_logs%'"
        )
    ]
    for name, _ in views:
        conn.exec_driver_sql(f'DROP VIEW "{name}"')
    conn.exec_driver_sql("ALTER TABLE api_logs RENAME TO api_logs__old")
    for row in conn.exec_driver_sql("PRAGMA index_list('api_logs__old')"):
        if row[3] == "c":  # explicit CREATE INDEX; autoindexes go with the table
            conn.exec_driver_sql(f'DROP INDEX "{row[1]}"')
    metadata_obj.create_all(conn, tables=[api_logs])
    for name, ddl in extra.items():  # columns we do not know are kept, data included
        conn.exec_driver_sql(f'ALTER TABLE api_logs ADD COLUMN "{name}" {ddl}')
    keep = keep + list(extra)
    # Legacy rows may hold NULL where the new table requires a value.
    fill = {
        "request_id": "'legacy-' || \"id\"",
        "timestamp": "CURRENT_TIMESTAMP",
        "model_id": "''",
        "provider": "''",
    }
    cols = ", ".join(f'"{n}"' for n in keep)
    exprs = ", ".join(f'COALESCE("{n}", {fill[n]})' if n in fill else f'"{n}"' for n in keep)
    conn.exec_driver_sql(f"INSERT INTO api_logs ({cols}) SELECT {exprs} FROM api_logs__old")
    conn.exec_driver_sql("DROP TABLE api_logs__old")
    for _, sql in views:
        conn.exec_driver_sql(sql)
