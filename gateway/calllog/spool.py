"""A local JSON-lines spool for rows that could not reach the database yet.

Each process appends to its own file (`calllog-<pid>.jsonl`), so several gateway workers can share one
directory. Before a replay, the active file is renamed ("claimed"), so rows appended during the replay go
to a fresh file and a claimed file can be deleted once its rows are committed.

A line that cannot be read back as a row (torn by a crash, edited by hand, written by something else) is
moved out of the claimed file into `calllog-<pid>.jsonl.bad` beside it (`quarantine`) before the replay, so
one such line neither stops the replay of the others nor is counted again at the next replay.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from gateway.calllog.rows import Row, line_to_row, row_to_line

log = logging.getLogger("gateway.calllog")

_PREFIX = "calllog-"


class Spool:
    """Durable overflow for call-log rows, safe to use from the event loop and from worker threads."""

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        self._pid = os.getpid() if pid is None else pid
        self._active = directory / f"{_PREFIX}{self._pid}.jsonl"
        self._rejected = directory / f"rejected-{self._pid}.jsonl"
        self.quarantined = directory / f"{_PREFIX}{self._pid}.jsonl.bad"
        self._lock = threading.Lock()

    def append(self, rows: Sequence[Row], *, fsync: bool = True) -> None:
        """Append rows; with `fsync`, return only once they are on disk. Raises OSError on failure."""
        self._write(self._active, rows, fsync)

    def reject(self, rows: Sequence[Row]) -> None:
        """Keep rows the database refused for good; they are never replayed automatically."""
        self._write(self._rejected, rows, True)

    def claim(self) -> list[Path]:
        """Take the files ready for replay: this process's active file plus files left by dead processes."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self._active.exists():
                self._active.rename(self.directory / f"{_PREFIX}{self._pid}.{time.time_ns()}.replay.jsonl")
        claimed: list[Path] = []
        for path in sorted(self.directory.glob(f"{_PREFIX}*.jsonl")):
            if path == self._active:
                continue
            owner = _owner(path)
            if owner != self._pid and owner is not None and _alive(owner):
                continue
            if owner != self._pid:
                # Rename first, so two processes starting together never replay the same orphan twice.
                target = self.directory / f"{_PREFIX}{self._pid}.{time.time_ns()}.replay.jsonl"
                try:
                    path.rename(target)
                except FileNotFoundError:
                    continue
                path = target
            claimed.append(path)
        return claimed

    def has_pending(self) -> bool:
        """Whether any spool file exists (cheap; used to decide whether a replay is due)."""
        try:
            return any(self.directory.glob(f"{_PREFIX}*.jsonl"))
        except OSError:
            return False

    def quarantine(self, path: Path) -> int:
        """Move the lines of claimed file `path` that are not rows to the `.bad` file; returns how many.

        A first pass only reads (the usual case: nothing to move). Otherwise the good lines go to a new file that
        replaces `path` once they, and the bad lines appended to the `.bad` file, are on disk.
        """
        with path.open("rb") as handle:
            if all(_readable(line) for line in handle if line.strip()):
                return 0
        sifted = path.with_name(path.name + ".sifting")
        moved = 0
        # No lock: only the writer replays, and appenders never touch a claimed file or the `.bad` file.
        with (
            path.open("rb") as source,
            os.fdopen(os.open(sifted, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as good,
            os.fdopen(os.open(self.quarantined, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as bad,
        ):
            for line in source:
                if not line.strip():
                    continue
                whole = line if line.endswith(b"\n") else line + b"\n"
                if _readable(line):
                    good.write(whole)
                else:
                    bad.write(whole)
                    moved += 1
            for written in (good, bad):
                written.flush()
                os.fsync(written.fileno())
        os.replace(sifted, path)
        return moved

    @staticmethod
    def read(path: Path, chunk: int) -> Iterator[tuple[list[Row], int]]:
        """Yield rows in chunks, with the number of unreadable lines in each chunk (none after `quarantine`)."""
        rows: list[Row] = []
        bad = 0
        with path.open("rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    rows.append(line_to_row(line))
                except (ValueError, TypeError):
                    bad += 1
                if len(rows) >= chunk:
                    yield rows, bad
                    rows, bad = [], 0
        if rows or bad:
            yield rows, bad

    @staticmethod
    def release(path: Path) -> None:
        """Delete a replayed file; call only after its rows are committed."""
        path.unlink(missing_ok=True)

    def _write(self, path: Path, rows: Sequence[Row], fsync: bool) -> None:
        data = b"".join(row_to_line(r) for r in rows)
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except BaseException:
                os.close(fd)
                raise
        # fsync outside the lock: an appender on the event loop must never wait for another thread's fsync.
        try:
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)


def _readable(line: bytes) -> bool:
    try:
        line_to_row(line)
    except (ValueError, TypeError):
        return False
    return True


def _owner(path: Path) -> int | None:
    head = path.name[len(_PREFIX) :].split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
