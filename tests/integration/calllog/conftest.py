"""A call-log back end for gateway-level tests: a SQLite file, or a private PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _pg(sql: str, dsn: str = PG_ADMIN) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


@dataclass
class LogBackend:
    """Where the gateway under test writes, and how the test reads it back or takes it down."""

    name: str
    env: dict[str, str]
    sqlite_path: Path | None = None
    database: str = ""

    def rows(self) -> list[dict[str, Any]]:
        if self.sqlite_path is not None:
            conn = sqlite3.connect(self.sqlite_path)
            conn.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in conn.execute("select * from api_logs order by id")]
            except sqlite3.OperationalError:
                return []
            finally:
                conn.close()
        try:
            return [dict(r) for r in _pg("select * from api_logs order by id", self.dsn)]
        except asyncpg.UndefinedTableError:
            return []

    def row(self, request_id: str) -> dict[str, Any]:
        matches = [r for r in self.rows() if r["request_id"] == request_id]
        assert len(matches) == 1, f"expected one row for {request_id}, got {len(matches)}"
        return matches[0]

    @property
    def dsn(self) -> str:
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{self.database}"


@pytest.fixture(params=["sqlite", "postgresql"])
def log_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogBackend]:
    if request.param == "sqlite":
        path = tmp_path / "calls.db"
        yield LogBackend("sqlite", {"SQLITE_DB_PATH": str(path)}, sqlite_path=path)
        return
    database = f"gw_{uuid.uuid4().hex[:12]}"
    try:
        _pg(f'CREATE DATABASE "{database}"')
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but {PG_ADMIN} is unusable: {type(exc).__name__}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN} (set CI=1 to make this a failure)")
    backend = LogBackend("postgresql", {}, database=database)
    backend.env = {"USE_SQLITE_LOG": "false", "DATABASE_URL": backend.dsn}
    try:
        yield backend
    finally:
        _pg(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        _pg(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        _pg(f'DROP DATABASE IF EXISTS "{database}"')


def pg_outage(backend: LogBackend, down: bool) -> None:
    """Refuse (or allow again) connections to the backend's database, cutting the open ones."""
    _pg(f'ALTER DATABASE "{backend.database}" ALLOW_CONNECTIONS {"false" if down else "true"}')
    if down:
        _pg(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{backend.database}'")
