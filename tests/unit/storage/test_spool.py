"""The spool file: append, claim, read back (tolerating a torn last line), release."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from gateway.calllog.delivery import Backoff
from gateway.calllog.rows import Row
from gateway.calllog.spool import Spool


def _row(n: int) -> Row:
    return {"request_id": f"gen-{n}", "timestamp": datetime(2025, 1, 1, tzinfo=UTC), "latency_ms": float(n)}


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


def test_round_trip_and_release(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([_row(1), _row(2)])
    spool.append([_row(3)], fsync=False)
    assert spool.has_pending()
    [path] = spool.claim()
    spool.append([_row(4)])  # lands in a fresh active file, not in the claimed one
    chunks = list(Spool.read(path, chunk=2))
    assert [[r["request_id"] for r in rows] for rows, _ in chunks] == [["gen-1", "gen-2"], ["gen-3"]]
    assert chunks[0][0][0] == _row(1)
    Spool.release(path)
    assert [p.name for p in tmp_path.iterdir()] == [f"calllog-{spool._pid}.jsonl"]


def test_torn_line_is_counted_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([_row(1)])
    with (tmp_path / f"calllog-{spool._pid}.jsonl").open("ab") as handle:
        handle.write(b'{"request_id": "gen-2", "timest')
    [path] = spool.claim()
    [(rows, bad)] = list(Spool.read(path, chunk=100))
    assert [r["request_id"] for r in rows] == ["gen-1"]
    assert bad == 1


def test_claims_orphans_of_dead_processes_only(tmp_path: Path) -> None:
    dead, live = _dead_pid(), 1  # pid 1 is always alive
    Spool(tmp_path, pid=dead).append([_row(1)])
    Spool(tmp_path, pid=live).append([_row(2)])
    claimed = Spool(tmp_path).claim()
    assert [r["request_id"] for path in claimed for rows, _ in Spool.read(path, 10) for r in rows] == ["gen-1"]
    assert (tmp_path / "calllog-1.jsonl").exists()


def test_rejected_rows_are_never_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.reject([_row(1)])
    assert not spool.has_pending()
    assert spool.claim() == []


def test_backoff_doubles_and_resets() -> None:
    backoff = Backoff(min_s=0.5, max_s=2.0)
    assert backoff.ready(0.0)
    backoff.failed(10.0)
    assert (backoff.delay, backoff.ready(10.4), backoff.ready(10.5)) == (0.5, False, True)
    backoff.failed(11.0)
    backoff.failed(12.0)
    backoff.failed(13.0)
    assert backoff.delay == 2.0
    backoff.succeeded()
    assert backoff.ready(0.0) and backoff.delay == 0.0


def test_quarantine_moves_lines_that_are_not_rows_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([_row(1)])
    with (tmp_path / f"calllog-{spool._pid}.jsonl").open("ab") as handle:
        handle.write(b'{"request_id": "gen-2", "timestamp": 1735689600}\n')  # a non-string timestamp
        handle.write(b"\n")
    spool.append([_row(4)])
    with (tmp_path / f"calllog-{spool._pid}.jsonl").open("ab") as handle:
        handle.write(b'{"request_id": "gen-3", "timest')  # torn by a crash
    [path] = spool.claim()
    assert spool.quarantine(path) == 2
    assert [r["request_id"] for rows, _ in Spool.read(path, 10) for r in rows] == ["gen-1", "gen-4"]
    assert spool.quarantined.read_bytes().splitlines() == [
        b'{"request_id": "gen-2", "timestamp": 1735689600}',
        b'{"request_id": "gen-3", "timest',
    ]
    assert spool.quarantined.stat().st_mode & 0o777 == 0o600 and path.stat().st_mode & 0o777 == 0o600
    assert spool.quarantine(path) == 0, "a second replay finds nothing more to move (nor counts it again)"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, spool.quarantined.name])


def test_quarantine_of_a_clean_file_writes_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([_row(1), _row(2)])
    [path] = spool.claim()
    before = path.stat()
    assert spool.quarantine(path) == 0
    assert path.stat().st_ino == before.st_ino and not spool.quarantined.exists()
