"""Batched SQLite inserts in one thread hop per batch.

Measured under load (bench/RESULTS.md, "call-log writer"): through SQLAlchemy + aiosqlite a 500-row batch took
0.3-6 s while the event loop was busy serving requests, so the writer fell behind at ~500 rows/s and the queue
overflowed to the spool. Two causes: every DBAPI call (BEGIN, execute, COMMIT, cursor, pool reset) is its own
round trip between the loop and aiosqlite's thread, each waiting a full loop iteration; and pysqlite's
executemany releases and re-takes the GIL around every row, each re-take waiting out the switch interval.
Here one function call in one dedicated thread does BEGIN, a multi-row INSERT per chunk and COMMIT.

The schema stays SQLAlchemy's (created and migrated through the async engine); values go through the
columns' own bind processors, so the stored form is exactly what SQLAlchemy reads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gateway.calllog.rows import Row
from gateway.calllog.schema import COLUMN_NAMES, api_logs

# Rows per INSERT: SQLite's bound-parameter limit is 32,766 since 3.32 (999 before).
MAX_ROWS = (32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999) // len(COLUMN_NAMES)
# A batch is cut into statements of these sizes only. pysqlite keeps every distinct statement prepared, and a
# prepared many-row INSERT holds hundreds of KiB: one statement per batch size grew the gateway by ~25 MiB every
# few seconds of light traffic (batches of every size) until the statement cache filled. Four sizes stay small.
CHUNK_SIZES = tuple(size for size in (512, 64, 8, 1) if size <= MAX_ROWS)

Binds = list[tuple[str, Callable[[Any], Any] | None]]


@functools.lru_cache(maxsize=len(CHUNK_SIZES))
def insert_sql(rows: int) -> str:
    """INSERT of `rows` rows with positional parameters; a replayed row is a no-op (ON CONFLICT DO NOTHING)."""
    one = "(" + ", ".join("?" * len(COLUMN_NAMES)) + ")"
    columns = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
    return f"INSERT INTO api_logs ({columns}) VALUES {', '.join([one] * rows)} ON CONFLICT DO NOTHING"


def chunks(rows: int) -> list[tuple[int, int]]:
    """(start, size) of each statement for a batch of `rows`, largest sizes first, sizes from CHUNK_SIZES."""
    out: list[tuple[int, int]] = []
    start = 0
    for size in CHUNK_SIZES:
        while rows - start >= size:
            out.append((start, size))
            start += size
    return out


def bind_processors(dialect: Any) -> Binds:
    """(column, processor) in COLUMN_NAMES order: what SQLAlchemy itself applies before pysqlite binds."""
    return [(name, api_logs.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in COLUMN_NAMES]


def flatten(rows: Sequence[Row], binds: Binds) -> tuple[Any, ...]:
    """The rows' values, processed, in parameter order."""
    flat: list[Any] = []
    append = flat.append
    for row in rows:
        for name, process in binds:
            value = row.get(name)
            append(process(value) if process is not None and value is not None else value)
    return tuple(flat)


class SqliteBulk:
    """One sqlite3 connection owned by one thread; `insert` is a single hop into that thread."""

    def __init__(self, path: str, binds: Binds, busy_timeout_ms: int) -> None:
        self._path, self._binds, self._busy_ms = path, binds, busy_timeout_ms
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="calllog-sqlite")
        self._conn: sqlite3.Connection | None = None

    async def insert(self, rows: Sequence[Row]) -> None:
        """Insert `rows` in one transaction; raises sqlite3 errors (or a bind processor's) unchanged."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._insert, rows)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._close)
        finally:
            self._thread.shutdown(wait=False)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            # isolation_level=None: autocommit, so the explicit BEGIN/COMMIT below are the only transaction.
            conn = sqlite3.connect(self._path, timeout=self._busy_ms / 1000, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _insert(self, rows: Sequence[Row]) -> None:
        conn = self._connect()
        conn.execute("BEGIN")
        try:
            for start, size in chunks(len(rows)):
                conn.execute(insert_sql(size), flatten(rows[start : start + size], self._binds))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
