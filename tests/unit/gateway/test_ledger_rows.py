"""A call whose row cannot be built (its body cannot be serialised) still leaves a row, reduced, saying why."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from gateway.calllog.record import AttemptRecord as Attempt
from gateway.calllog.record import CallRecord
from gateway.calllog.settings import StorageSettings
from gateway.calllog.writer import build_call_log
from gateway.telemetry.events import EventHub
from gateway.telemetry.ledger import Bookkeeper, ClientLimits
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.recording import ClientInfo
from routing.limits.ratelimit import InProcessRateLimiter
from routing.limits.streams import LocalStreamCap


async def test_an_unserialisable_body_leaves_a_reduced_row(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    env = {"SQLITE_DB_PATH": str(db), "CALL_LOG_SYNC": "true", "CALL_LOG_SPOOL_DIR": str(tmp_path / "spool")}
    call_log = build_call_log(StorageSettings.from_env(env, tmp_path))
    await call_log.start()
    books = Bookkeeper(
        metrics=Metrics(),
        events=EventHub(),
        call_log=call_log,
        stream_cap=LocalStreamCap(0),
        limiter=InProcessRateLimiter(),
        client_limits=ClientLimits(),
        log_content=True,
    )
    body = {"model": "m", "messages": {"not", "json"}}  # a set: orjson cannot write it
    ledger = books.open("gen-1", asked="m", model=None, body=body, client=ClientInfo(), stream=False)
    await ledger.finish(502, "upstream failed")
    await ledger.finish(200)  # exactly once: the second finish does nothing
    await call_log.close()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select request_id, status_code, prompt, metadata from api_logs").fetchall()
    assert len(rows) == 1
    request_id, status, prompt, metadata = rows[0]
    assert (request_id, status, prompt) == ("gen-1", 502, None)
    assert '"reduced"' in metadata


async def test_reduced_rows_are_counted_and_even_an_unreadable_call_keeps_its_bare_facts(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    env = {"SQLITE_DB_PATH": str(db), "CALL_LOG_SYNC": "true", "CALL_LOG_SPOOL_DIR": str(tmp_path / "spool")}
    call_log = build_call_log(StorageSettings.from_env(env, tmp_path))
    await call_log.start()
    books = Bookkeeper(
        metrics=Metrics(),
        events=EventHub(),
        call_log=call_log,
        stream_cap=LocalStreamCap(0),
        limiter=InProcessRateLimiter(),
        client_limits=ClientLimits(),
        log_content=True,
    )
    body = {"model": "m", "messages": {"not", "json"}}
    ledger = books.open("gen-2", asked="m", model=None, body=body, client=ClientInfo(ip="10.0.0.1"), stream=False)
    ledger.call.attempts.append(Attempt("d", "p", "error", 502, 1.0, 12345))  # type: ignore[arg-type]
    await ledger.finish(502, "upstream failed")
    # a record the writer cannot map (a prompt that is not text) is written reduced, not lost
    record = CallRecord("gen-3", time.time(), "m", "p", "d", False, 200, 1.0, prompt=b"\x00")  # type: ignore[arg-type]
    await call_log.write(record)
    counters = call_log.counters()
    await call_log.close()
    assert counters["rows_reduced"] == 2 and counters["rows_lost"] == 0
    with sqlite3.connect(db) as conn:
        found = dict(conn.execute("select request_id, metadata from api_logs").fetchall())
    assert set(found) == {"gen-2", "gen-3"}
    assert '"bare":true' in found["gen-2"] and '"reduced"' in found["gen-3"]
