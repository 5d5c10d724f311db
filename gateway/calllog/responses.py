"""Stored responses: what `previous_response_id`, `GET/DELETE /v1/responses/{id}` and `input_items` read.

A table `responses` beside `api_logs`, in the call log's database (SQLite or PostgreSQL), so a follow-up finds
its conversation whichever deployment, worker or replica served the turn before. The newest responses are also
kept in memory: a follow-up sent the moment the first answer arrives finds it even before its row is written.
Without a call-log database (CALL_LOG=off) only the memory holds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Column, MetaData, Table, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.calllog.database import EngineFactory, create_private, make_engine
from gateway.calllog.schema import UTCDateTime
from gateway.calllog.settings import StorageSettings

log = logging.getLogger("gateway.responses")
_metadata = MetaData()

responses_table = Table(
    "responses",
    _metadata,
    Column("id", Text, primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("model", Text, nullable=False),
    Column("request_id", Text),
    Column("history", Text, nullable=False),  # JSON: the items of the turns before this one
    Column("input", Text, nullable=False),  # JSON: this turn's input items
    Column("response", Text, nullable=False),  # JSON: the Response object
)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One response and the conversation that led to it."""

    id: str
    model: str
    request_id: str
    history: list[dict[str, Any]]
    input: list[dict[str, Any]]
    response: dict[str, Any]

    def conversation(self) -> list[dict[str, Any]]:
        """Every item up to and including this response's output: the history of a follow-up."""
        return [*self.history, *self.input, *(self.response.get("output") or [])]


class ResponseStore:
    """Keeps responses in the call-log database, the newest `capacity` also in memory."""

    def __init__(
        self, settings: StorageSettings, capacity: int = 1024, *, engine_factory: EngineFactory | None = None
    ) -> None:
        self.settings, self.capacity = settings, capacity
        self._factory = engine_factory or partial(make_engine, settings)
        self._recent: OrderedDict[str, StoredResponse] = OrderedDict()
        self._engine: AsyncEngine | None = None
        self._lock = asyncio.Lock()
        self._writes: set[asyncio.Task[None]] = set()

    async def _ready(self) -> AsyncEngine | None:
        if not self.settings.enabled:
            return None
        async with self._lock:
            if self._engine is None:
                engine = self._factory()
                if engine.dialect.name == "sqlite" and engine.url.database:
                    await asyncio.to_thread(create_private, engine.url.database)
                try:
                    async with engine.begin() as conn:
                        await conn.run_sync(_metadata.create_all)
                except BaseException:
                    await engine.dispose()
                    raise
                self._engine = engine
            return self._engine

    def _remember(self, stored: StoredResponse) -> None:
        self._recent[stored.id] = stored
        self._recent.move_to_end(stored.id)
        while len(self._recent) > self.capacity:
            self._recent.popitem(last=False)

    async def put(self, stored: StoredResponse) -> None:
        """Keep a response: in memory at once, its row written now (CALL_LOG_SYNC) or in the background."""
        self._remember(stored)
        if not self.settings.enabled:
            return
        if self.settings.sync:
            await self._write(stored)
            return
        task = asyncio.create_task(self._write(stored), name=f"store-response-{stored.id}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, stored: StoredResponse) -> None:
        try:
            engine = await self._ready()
            if engine is None:
                return
            row = {
                "id": stored.id,
                "created_at": datetime.now(UTC),
                "model": stored.model,
                "request_id": stored.request_id,
                "history": orjson.dumps(stored.history).decode(),
                "input": orjson.dumps(stored.input).decode(),
                "response": orjson.dumps(stored.response).decode(),
            }
            async with engine.begin() as conn:
                await conn.execute(delete(responses_table).where(responses_table.c.id == stored.id))
                await conn.execute(responses_table.insert(), [row])
        except Exception:  # task boundary: the answer went out; only a later follow-up would miss it
            log.exception("responses: storing %s failed", stored.id)

    async def get(self, response_id: str) -> StoredResponse | None:
        if (stored := self._recent.get(response_id)) is not None:
            return stored
        engine = await self._ready()
        if engine is None:
            return None
        async with engine.connect() as conn:
            row = (await conn.execute(select(responses_table).where(responses_table.c.id == response_id))).first()
        if row is None:
            return None
        stored = StoredResponse(
            id=row.id,
            model=row.model,
            request_id=row.request_id or "",
            history=orjson.loads(row.history),
            input=orjson.loads(row.input),
            response=orjson.loads(row.response),
        )
        self._remember(stored)
        return stored

    async def delete(self, response_id: str) -> bool:
        """Forget a response; False when it was not stored."""
        if self._writes:  # a row still being written must land before it is deleted, or it would come back
            await asyncio.wait(set(self._writes), timeout=10.0)
        found = await self.get(response_id) is not None
        self._recent.pop(response_id, None)
        engine = await self._ready()
        if engine is not None:
            async with engine.begin() as conn:
                await conn.execute(delete(responses_table).where(responses_table.c.id == response_id))
        return found

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=10.0)
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
