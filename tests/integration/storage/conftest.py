"""One `target` fixture per backend: a real SQLite file and a private schema on the machine's PostgreSQL.

Each target can be taken down and brought back (`target.down()` / `target.up()`): its engine factory then
builds engines for an unreachable database, which is how the tests simulate an outage.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.calllog.database import configure_sqlite
from gateway.calllog.record import AttemptRecord, CallRecord
from gateway.calllog.schema import api_logs
from gateway.calllog.settings import StorageSettings
from gateway.calllog.writer import CallLog

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PG_DOWN_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/test"


class Target:
    """A database for one test, with a switch to make it unreachable."""

    def __init__(
        self,
        backend: str,
        settings: StorageSettings,
        good: Callable[[], AsyncEngine],
        bad: Callable[[], AsyncEngine],
    ) -> None:
        self.backend = backend
        self.settings = settings
        self._good = good
        self._bad = bad
        self.is_down = False
        self._reader: AsyncEngine | None = None

    def down(self) -> None:
        self.is_down = True

    def up(self) -> None:
        self.is_down = False

    def engine_factory(self) -> AsyncEngine:
        return self._bad() if self.is_down else self._good()

    def call_log(self, **changes: Any) -> CallLog:
        return CallLog(replace(self.settings, **changes), engine_factory=self.engine_factory)

    async def reader(self) -> AsyncEngine:
        if self._reader is None:
            self._reader = self._good()
        return self._reader

    async def execute(self, sql: str) -> None:
        async with (await self.reader()).begin() as conn:
            await conn.execute(text(sql))

    async def count(self) -> int:
        async with (await self.reader()).connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(api_logs))).scalar_one())

    async def rows(self) -> list[dict[str, Any]]:
        async with (await self.reader()).connect() as conn:
            result = await conn.execute(select(api_logs).order_by(api_logs.c.id))
            return [dict(r._mapping) for r in result]

    async def aclose(self) -> None:
        if self._reader is not None:
            await self._reader.dispose()


def _settings(tmp_path: Path, backend: str, url: str, sqlite_path: Path | None) -> StorageSettings:
    return StorageSettings(
        backend=backend,  # type: ignore[arg-type]
        url=url,
        sqlite_path=sqlite_path,
        spool_dir=tmp_path / "spool",
        sync=False,
        batch_size=500,
        flush_interval_s=0.01,
        retry_min_s=0.02,
        retry_max_s=0.05,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    """The same test against SQLite and PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "db" / "calls.db"
        path.parent.mkdir()
        good_url = f"sqlite+aiosqlite:///{path}"
        bad_url = f"sqlite+aiosqlite:///{tmp_path}/no-such-dir/calls.db"  # cannot be opened: the outage

        def sqlite_engine(url: str) -> AsyncEngine:
            engine = create_async_engine(url, hide_parameters=True)
            configure_sqlite(engine)
            return engine

        target = Target(
            "sqlite",
            _settings(tmp_path, "sqlite", good_url, path),
            lambda: sqlite_engine(good_url),
            lambda: sqlite_engine(bad_url),
        )
        yield target
        await target.aclose()
        return

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        await admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but {PG_URL} is unreachable: {type(exc).__name__}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set CI=1 to make this a failure)")

    def pg_engine(url: str) -> AsyncEngine:
        args = {"server_settings": {"search_path": schema}, "timeout": 2}
        return create_async_engine(url, hide_parameters=True, pool_size=2, pool_pre_ping=True, connect_args=args)

    target = Target(
        "postgresql",
        _settings(tmp_path, "postgresql", PG_URL, None),
        lambda: pg_engine(PG_URL),
        lambda: pg_engine(PG_DOWN_URL),
    )
    yield target
    await target.aclose()
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


def make_record(n: int = 0, **overrides: Any) -> CallRecord:
    """A fully populated record with a unique request id."""
    values: dict[str, Any] = {
        "request_id": f"gen-{uuid.uuid4().hex}",
        "started_at": time.time() - 1,
        "model_id": "llama-3.3-70b-instruct",
        "provider": "local",
        "deployment": "local-vllm-a",
        "stream": True,
        "status_code": 200,
        "latency_ms": 100.0 + n,
        "ttft_ms": 20.0 + n,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "reasoning_tokens": 3,
        "cached_tokens": 4,
        "total_tokens": 30,
        "cost_usd": 0.00012345,
        "finish_reason": "stop",
        "attempts": (
            AttemptRecord("remote-a", "deepseek", "timeout", None, 1500.0, "read timeout"),
            AttemptRecord("local-vllm-a", "local", "ok", 200, 98.5),
        ),
        "fallback_used": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 256,
        "seed": 42,
        "user_id": "u1",
        "session_id": "s1",
        "api_key_name": "team-a",
        "client_ip": "10.0.0.1",
        "prompt": '[{"role": "user", "content": "hi"}]',
        "response": "hello",
        "metadata": {"user_agent": "pytest", "tags": ["a"]},
        "routing_reason": "fallback",
    }
    values.update(overrides)
    return CallRecord(**values)
