"""`CallLog`: one row per call, written by a single background task, never on the request path.

A request only does `queue.put_nowait`. One writer task drains the queue in batches (executemany in one
transaction). When the database is unreachable, batches go to a local spool file (fsync'd) and the writer
retries with back-off; when the database is back it replays the spool, then deletes it. Inserts are
idempotent on `request_id`, so a replay after a partial failure never duplicates a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from gateway.calllog.database import Database, EngineFactory, make_engine
from gateway.calllog.delivery import Delivery
from gateway.calllog.record import CallRecord
from gateway.calllog.rows import Row, record_to_row
from gateway.calllog.settings import StorageSettings
from gateway.calllog.spool import Spool
from gateway.calllog.stats import generation_from_row, query_generation, query_stats

log = logging.getLogger("gateway.calllog")

# How long close() keeps draining a backlog while the writer makes progress (a stall ends it sooner).
CLOSE_BOUND_S = 60.0

# Queue item that asks the writer to deliver what it holds now (and to try a pending replay).
_FLUSH = None


class CallLogUnavailable(RuntimeError):
    """The call-log database cannot answer a read (stats or generation) right now."""


class CallLog:
    """The durable call log. Reads (`stats`, `generation`) raise `CallLogUnavailable`; writes never raise."""

    def __init__(self, settings: StorageSettings, *, engine_factory: EngineFactory | None = None) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self.backend: str = settings.backend
        self._db = Database(engine_factory or partial(make_engine, settings), settings.sqlite_busy_timeout_ms)
        self._out = Delivery(settings, self._db, Spool(settings.spool_dir), _safe_describe(settings))
        self._queue: asyncio.Queue[CallRecord | None] = asyncio.Queue(maxsize=settings.queue_max)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # serialises delivery in sync mode and at shutdown
        self._progress = asyncio.Event()
        self._enqueued = 0
        self._handled = 0
        self._inflight: list[CallRecord] = []
        self._unwritten: dict[str, CallRecord] = {}  # queued, not yet delivered: lets generation() see them
        self._closed = False

    async def start(self) -> None:
        """Connect, create/migrate the schema and start the writer; a down database is retried later."""
        if not self.enabled:
            log.info("call log disabled: USE_SQLITE_LOG=false and DATABASE_URL is not set")
            return
        directory = self.settings.sqlite_path.parent if self.settings.sqlite_path else None
        try:
            if directory is not None:
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the connect below fails and is retried; rows go to the spool meanwhile
            log.error("call log: cannot create %s: %s", directory, exc)
        self._out.spool_pending = await asyncio.to_thread(self._out.spool.has_pending)
        try:
            await self._db.ready()
            log.info("call log: writing to %s (%s)", self._db.describe(), "sync" if self.settings.sync else "async")
        except Exception as exc:
            self._out.failed(exc)
        if self.settings.sync:
            async with self._lock:
                await self._out.deliver([])
        else:
            self._task = asyncio.create_task(self._run(), name="calllog-writer")

    async def write(self, record: CallRecord) -> None:
        """Log one call. Async mode only enqueues; sync mode returns after the commit (or the spool)."""
        if not self.enabled:
            return
        try:
            if self.settings.sync:
                async with self._lock:
                    await self._out.deliver(self._out.rows([record]))
            elif self._closed:
                self._out.overflow(self._out.rows([record]))
            else:
                self._queue.put_nowait(record)
                self._enqueued += 1
                self._unwritten[record.request_id] = record
        except asyncio.QueueFull:
            self._out.overflow(self._out.rows([record]))
        except Exception:  # a log write must never fail the request that produced it
            log.exception("call log: write failed for request %s", record.request_id)

    async def flush(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (the gateway's agreed interface)
        """Wait until every record queued so far is written or spooled (and a due replay was tried)."""
        await self._drain(stall=timeout, bound=timeout)

    async def close(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (the gateway's agreed interface)
        """Drain to the database while the writer makes progress, stop it, spool only what is left, dispose."""
        if not self.enabled or self._closed:
            return
        # `timeout` bounds a stall, not the drain: a backlog that is being written keeps being written.
        await self._drain(stall=timeout, bound=max(timeout, CLOSE_BOUND_S))
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        leftover = list(self._inflight)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                leftover.append(item)
        rows = self._out.held + self._out.rows(leftover)
        self._out.held = []
        if rows or self._out.spool_pending:
            await self._last_delivery(rows, timeout)
        self._unwritten.clear()
        await self._db.dispose()
        log.info("call log closed: %s", self.counters())

    async def _drain(self, stall: float, bound: float) -> None:
        """Wait until what is queued now is handled; give up after `stall` s without progress or `bound` s."""
        if not self.enabled:
            return
        if self.settings.sync or self._task is None:
            async with self._lock:
                await self._out.deliver([])
            return
        try:
            self._queue.put_nowait(_FLUSH)
            self._enqueued += 1
        except asyncio.QueueFull:
            pass  # the writer is busy with full batches and does not wait for more
        target = self._enqueued
        loop = asyncio.get_running_loop()
        end = loop.time() + bound
        while self._handled < target and not self._task.done():
            before, wait = self._handled, min(stall, end - loop.time())
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._progress.wait()
            if self._handled < target and (self._handled == before or loop.time() >= end):
                log.warning("call log: flush gave up with %d rows queued", self._queue.qsize())
                return

    async def _last_delivery(self, rows: list[Row], timeout: float) -> None:  # noqa: ASYNC109
        """At close: one more try at the database (with any pending spool replay) before spooling the rows."""
        try:
            async with asyncio.timeout(timeout):
                async with self._lock:
                    await self._out.deliver(rows)
            return
        except TimeoutError:
            log.warning("call log: database too slow at close; spooling %d rows", len(rows))
        except Exception:  # task boundary: closing must not fail
            log.exception("call log: final delivery failed; spooling %d rows", len(rows))
        if rows:
            await self._out.to_spool(rows)

    async def stats(self, hours: float, model: str | None, provider: str | None) -> list[dict[str, Any]]:
        """Usage per (model_id, provider) over the last `hours`."""
        if not self.enabled:
            return []
        since = datetime.now(UTC) - timedelta(hours=hours)
        try:
            engine = await self._db.ready()
            async with engine.connect() as conn:
                return await query_stats(conn, since, model or None, provider or None)
        except Exception as exc:
            raise CallLogUnavailable(f"call log database unavailable ({type(exc).__name__})") from exc

    async def generation(self, request_id: str) -> dict[str, Any] | None:
        """One call as an OpenRouter generation record, or None when unknown."""
        if not self.enabled:
            return None
        pending = self._unwritten.get(request_id)
        if pending is not None:
            return generation_from_row(record_to_row(pending, log_content=False))
        try:
            engine = await self._db.ready()
            async with engine.connect() as conn:
                return await query_generation(conn, request_id)
        except Exception as exc:
            raise CallLogUnavailable(f"call log database unavailable ({type(exc).__name__})") from exc

    def counters(self) -> dict[str, int]:
        """Writer counters for metrics; `rows_lost` should stay 0."""
        return {"queue_depth": self._queue.qsize(), "queue_capacity": self.settings.queue_max, **self._out.counts()}

    async def _run(self) -> None:
        while True:
            items = await self._collect()
            records = [r for r in items if r is not None]
            self._inflight = records
            try:
                await self._out.deliver(self._out.rows(records))
            except Exception:  # task boundary: the writer must survive anything
                log.exception("call log: writer error; spooling %d rows", len(records))
                await self._out.to_spool(self._out.rows(records))
            finally:
                self._inflight = []
            for record in records:
                self._unwritten.pop(record.request_id, None)
            self._handled += len(items)
            self._progress.set()
            self._progress = asyncio.Event()

    async def _collect(self) -> list[CallRecord | None]:
        """Up to one batch; waits `flush_interval_s` to fill it, unless a flush was asked for."""
        loop = asyncio.get_running_loop()
        idle: float | None = None
        if self._out.spool_pending or self._out.held:
            idle = max(0.0, self._out.backoff.next_at - loop.time()) or self.settings.retry_min_s
        items: list[CallRecord | None] = []
        try:
            async with asyncio.timeout(idle):
                items.append(await self._queue.get())
        except TimeoutError:
            return items
        deadline = loop.time() + self.settings.flush_interval_s
        while items[-1] is not None and len(items) < self.settings.batch_size:
            try:
                items.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    items.append(await self._queue.get())
            except TimeoutError:
                break
        return items


def build_call_log(settings: StorageSettings) -> CallLog:
    """The call log for these settings (a no-op log when logging is disabled)."""
    return CallLog(settings)


def _safe_describe(settings: StorageSettings) -> str:
    try:
        return settings.describe()
    except Exception:  # a malformed URL must not break logging, nor be printed
        return settings.backend
