"""Engine creation and batched, idempotent inserts into `api_logs`."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Text, bindparam, cast, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from gateway.calllog.rows import Row
from gateway.calllog.schema import COLUMN_NAMES, api_logs, ensure_schema
from gateway.calllog.settings import StorageSettings
from gateway.calllog.sqlite_bulk import SqliteBulk, bind_processors

EngineFactory = Callable[[], AsyncEngine]


def make_engine(settings: StorageSettings) -> AsyncEngine:
    """The engine for the configured backend; rows are never echoed into error messages."""
    if settings.backend == "sqlite":
        engine = create_async_engine(settings.url, hide_parameters=True)
        configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    if settings.backend == "postgresql":
        return create_async_engine(
            settings.url,
            hide_parameters=True,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=10,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={"timeout": settings.connect_timeout_s, "command_timeout": settings.command_timeout_s},
        )
    raise ValueError(f"no database for backend {settings.backend!r}")


def create_private(path: str) -> None:
    """Create the SQLite file owner-only (0600) if it does not exist yet; SQLite gives its -wal and -shm files
    the database file's mode. An existing file keeps the mode the operator gave it."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # it exists, or cannot be created: then SQLite's own open says why
        return
    os.close(fd)


def configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int = 5_000) -> None:
    """WAL (readers never block the writer), a busy timeout, and real BEGINs so DDL is transactional too."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling skips BEGIN before DDL; SQLAlchemy's documented fix.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def insert_statement(dialect_name: str, json_columns: frozenset[str] = frozenset()) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, so a replayed row is a no-op.

    Untargeted on purpose: it still works on a legacy table whose duplicates kept UNIQUE(request_id)
    from being added, while request ids are random, so the conflict it skips is always the same row.
    `json_columns` are legacy JSONB columns: the JSON text is cast, since PostgreSQL will not assign
    varchar to jsonb implicitly.
    """
    if dialect_name == "sqlite":
        return sqlite.insert(api_logs).on_conflict_do_nothing()
    if dialect_name == "postgresql":
        stmt = postgresql.insert(api_logs)
        if json_columns:
            values: dict[str, ColumnElement[Any]] = {n: bindparam(n, type_=api_logs.c[n].type) for n in COLUMN_NAMES}
            values.update({n: cast(bindparam(n, type_=Text), postgresql.JSONB) for n in json_columns})
            stmt = stmt.values(values)
        return stmt.on_conflict_do_nothing()
    raise ValueError(f"unsupported dialect {dialect_name!r}")


class Database:
    """Owns one engine, built lazily by `factory` and rebuilt after a failure."""

    def __init__(self, factory: EngineFactory, sqlite_busy_timeout_ms: int = 5_000) -> None:
        self._factory = factory
        self._engine: AsyncEngine | None = None
        self._insert: Insert | None = None
        self._bulk: SqliteBulk | None = None  # SQLite only: inserts bypass aiosqlite (see sqlite_bulk.py)
        self._busy_ms = sqlite_busy_timeout_ms
        self._lock = asyncio.Lock()

    async def ready(self) -> AsyncEngine:
        """The engine, with the schema created or migrated on first use. Raises when the DB is unreachable."""
        async with self._lock:
            if self._engine is not None:
                return self._engine
            engine = self._factory()
            try:
                if engine.dialect.name == "sqlite" and engine.url.database:
                    # sqlite3 would create it 0644 (umask 022): rows hold prompts, client IPs and key names
                    await asyncio.to_thread(create_private, engine.url.database)
                async with engine.begin() as conn:
                    json_columns = await conn.run_sync(ensure_schema)
            except BaseException:
                await engine.dispose()
                raise
            self._insert = insert_statement(engine.dialect.name, json_columns)
            if engine.dialect.name == "sqlite" and engine.url.database:
                self._bulk = SqliteBulk(engine.url.database, bind_processors(engine.dialect), self._busy_ms)
            self._engine = engine
            return engine

    def describe(self) -> str:
        """The current target without its password."""
        if self._engine is None:
            return "(not connected)"
        return self._engine.url.render_as_string(hide_password=True)

    async def insert(self, rows: Sequence[Row]) -> None:
        """Insert rows in one transaction (SQLite: one thread hop; PostgreSQL: executemany)."""
        engine = await self.ready()
        if self._bulk is not None:
            await self._bulk.insert(rows)
            return
        params = [{name: row.get(name) for name in COLUMN_NAMES} for row in rows]
        assert self._insert is not None  # set together with the engine
        async with engine.begin() as conn:
            await conn.execute(self._insert, params)

    async def insert_each(self, rows: Sequence[Row]) -> list[tuple[Row, BaseException]]:
        """Insert rows one by one; return the rows the database refuses, with their errors."""
        refused: list[tuple[Row, BaseException]] = []
        for row in rows:
            try:
                await self.insert([row])
            except (ValueError, TypeError, OverflowError) as exc:
                refused.append((row, exc))
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                refused.append((row, exc))
        return refused

    async def reset(self) -> None:
        """Drop the engine so the next call builds a fresh one (and re-checks the schema)."""
        async with self._lock:
            engine, self._engine = self._engine, None
            bulk, self._bulk = self._bulk, None
        if bulk is not None:
            await bulk.close()
        if engine is not None:
            await engine.dispose()

    async def dispose(self) -> None:
        """Close all pooled connections."""
        await self.reset()


def is_data_error(exc: BaseException) -> bool:
    """Errors caused by the rows themselves; retrying the same rows would fail forever."""
    return isinstance(exc, IntegrityError | DataError | sqlite3.IntegrityError | sqlite3.DataError | OverflowError)
