"""Where call-log rows go: the database when it answers, otherwise the spool, otherwise (bounded) memory.

Used only by the single writer task (or under the sync-mode lock), so its state needs no locking.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from gateway.calllog.database import Database, is_data_error
from gateway.calllog.record import CallRecord
from gateway.calllog.rows import Row, record_to_row
from gateway.calllog.settings import StorageSettings
from gateway.calllog.spool import Spool

log = logging.getLogger("gateway.calllog")


@dataclass(slots=True)
class Counters:
    """Monotonic counters for metrics; `rows_lost` is the one that must stay 0."""

    rows_written: int = 0
    rows_spooled: int = 0
    rows_lost: int = 0
    rows_rejected: int = 0
    rows_reduced: int = 0  # written without their content: it could not be serialised
    write_errors: int = 0
    batches: int = 0


@dataclass(slots=True)
class Backoff:
    """Exponential retry delay; the clock is passed in, so it is testable without sleeping."""

    min_s: float
    max_s: float
    delay: float = 0.0
    next_at: float = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.next_at

    def failed(self, now: float) -> None:
        self.delay = min(self.max_s, max(self.min_s, self.delay * 2))
        self.next_at = now + self.delay

    def succeeded(self) -> None:
        self.delay = 0.0
        self.next_at = 0.0


class Delivery:
    """Writes batches to the database, spools them during an outage, and replays the spool afterwards."""

    def __init__(self, settings: StorageSettings, db: Database, spool: Spool, target: str) -> None:
        self.settings = settings
        self.db = db
        self.spool = spool
        self.counters = Counters()
        self.backoff = Backoff(settings.retry_min_s, settings.retry_max_s)
        self.spool_pending = False
        self.held: list[Row] = []  # rows neither the DB nor the spool would take; at most queue_max
        self._target = target  # secret-free description of the database

    def counts(self) -> dict[str, int]:
        return asdict(self.counters)

    def rows(self, records: list[CallRecord]) -> list[Row]:
        """Map records to rows, applying LOG_CONTENT. A record that cannot be mapped goes as a reduced row (no
        content, attempts or metadata but why); reduced rows are counted, and only a record that cannot even be
        reduced is lost."""
        rows: list[Row] = []
        for record in records:
            try:
                rows.append(record_to_row(record, log_content=self.settings.log_content))
            except Exception as exc:
                log.error("call log: unmappable record %s: %s; writing it reduced", record.request_id, brief(exc))
                record = replace(record, prompt=None, response=None, attempts=(), metadata={"reduced": brief(exc)})
                try:
                    rows.append(record_to_row(record, log_content=False))
                except Exception as again:
                    self.counters.rows_lost += 1
                    log.error("call log: lost record %s: %s", record.request_id, brief(again))
                    continue
            if "reduced" in record.metadata:
                self.counters.rows_reduced += 1
        return rows

    async def deliver(self, rows: list[Row]) -> None:
        """Write held rows, a due spool replay and `rows`; whatever the database refuses goes to the spool."""
        rows = self.held + rows
        self.held = []
        if not rows and not self.spool_pending:
            return
        if self.backoff.ready(asyncio.get_running_loop().time()):
            try:
                if self.spool_pending:
                    await self._replay()
                if rows:
                    await self._insert(rows)
                self.backoff.succeeded()
                return
            except Exception as exc:
                self.failed(exc)
                await self.db.reset()
        if rows:
            await self.to_spool(rows)

    async def to_spool(self, rows: list[Row]) -> None:
        """Append rows to the spool (fsync'd, in a thread); keep them in memory if even that fails."""
        try:
            await asyncio.to_thread(self.spool.append, rows)
        except OSError as exc:
            self.held = rows[-self.settings.queue_max :]
            lost = len(rows) - len(self.held)
            self.counters.rows_lost += lost
            log.error("call log: spool failed (%s); holding %d rows, lost %d", brief(exc), len(self.held), lost)
            return
        self.counters.rows_spooled += len(rows)
        self.spool_pending = True

    def overflow(self, rows: list[Row]) -> None:
        """Queue full or log closed: append straight to the spool (page cache, no fsync) rather than drop."""
        try:
            self.spool.append(rows, fsync=False)
        except OSError as exc:
            self.counters.rows_lost += len(rows)
            log.error("call log: lost %d rows: queue full and spool failed (%s)", len(rows), brief(exc))
            return
        self.counters.rows_spooled += len(rows)
        self.spool_pending = True

    def failed(self, exc: BaseException) -> None:
        """Count a database failure and push the next attempt back."""
        self.counters.write_errors += 1
        self.backoff.failed(asyncio.get_running_loop().time())
        log.warning(
            "call log: database %s unavailable (%s); rows go to the spool, retry in %.2fs",
            self._target,
            brief(exc),
            self.backoff.delay,
        )

    async def _insert(self, rows: list[Row]) -> None:
        size = self.settings.batch_size
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            try:
                await self.db.insert(chunk)
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                await self._insert_each(chunk)
                continue
            self.counters.rows_written += len(chunk)
            self.counters.batches += 1

    async def _insert_each(self, rows: list[Row]) -> None:
        # One bad row must neither block its batch nor stall the spool forever.
        refused = await self.db.insert_each(rows)
        self.counters.rows_written += len(rows) - len(refused)
        self.counters.batches += 1
        if not refused:
            return
        self.counters.rows_rejected += len(refused)
        for row, exc in refused:
            log.error("call log: database refused row %s: %s", row["request_id"], brief(exc))
        try:
            await asyncio.to_thread(self.spool.reject, [row for row, _ in refused])
        except OSError as exc:
            self.counters.rows_lost += len(refused)
            log.error("call log: lost %d refused rows (%s)", len(refused), brief(exc))

    async def _replay(self) -> None:
        # Cleared first: rows spooled while the replay runs (queue overflow) set it again, so they are not
        # stranded in a fresh spool file until the next restart.
        self.spool_pending = False
        try:
            for path in await asyncio.to_thread(self.spool.claim):
                await self._quarantine(path)
                replayed = 0
                for rows, bad in Spool.read(path, self.settings.batch_size):
                    if bad:
                        self.counters.rows_lost += bad
                        log.error("call log: %d unreadable lines in spool file %s", bad, path.name)
                    await self._insert(rows)
                    replayed += len(rows)
                Spool.release(path)  # only now: every row of the file is committed
                log.info("call log: replayed %d rows from %s", replayed, path.name)
        except BaseException:
            self.spool_pending = True
            raise

    async def _quarantine(self, path: Path) -> None:
        """Move the lines of a claimed spool file that are not rows aside, counted as lost, before its replay: one
        such line must not stop every later replay (and be reported as a database outage)."""
        try:
            moved = await asyncio.to_thread(self.spool.quarantine, path)
        except OSError as exc:  # the replay then counts those lines as unreadable, and goes on
            log.error("call log: could not quarantine bad lines of spool file %s (%s)", path.name, brief(exc))
            return
        if moved:
            self.counters.rows_lost += moved
            log.error(
                "call log: %d unreadable line(s) of spool file %s moved to %s", moved, path.name, self.spool.quarantined
            )


def brief(exc: BaseException) -> str:
    """Exception type and first line: SQLAlchemy appends the statement, and rows can carry user content."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__
