"""Throwaway services for `make chaos` / `make soak`: a PostgreSQL cluster (initdb/pg_ctl on its own port), a
Redis without persistence, and a small tmpfs for the call-log spool. Never the machine's shared instances."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.procs import free_port


def _as_postgres(cmd: list[str]) -> list[str]:
    """postgres refuses to run as root: run its tools as the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError("running as root and no `postgres` user to run a throwaway PostgreSQL as") from exc
    return ["runuser", "-u", "postgres", "--", *cmd]


class ThrowawayPostgres:
    """`initdb -A trust -U postgres` in a temporary directory, served on a free port and a private socket dir."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"]),
            check=True,
            capture_output=True,
        )
        self.start()
        subprocess.run(
            _as_postgres(["createdb", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "chaos"]),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/chaos"

    def start(self) -> None:
        # fsync off: a throwaway instance on a shared machine; the gateway's own spool is what is under test
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        cmd = ["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start"]
        subprocess.run(_as_postgres(cmd), check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        cmd = ["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"]
        subprocess.run(_as_postgres(cmd), check=False, capture_output=True)

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayRedis:
    """`redis-server --port <free> --save ''` (no persistence), restartable on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-redis-"))
        self.popen: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = (self.dir / "redis.log").open("ab")
        self.popen = subprocess.Popen(cmd, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()  # as a crash would: no goodbye to the clients
            self.popen.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SmallDisk:
    """A tmpfs of `size_mib` (when we may mount), else a plain directory; `fill()` writes a ballast file until the
    disk is full, `drain()` removes it."""

    def __init__(self, path: Path, size_mib: int = 16) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mount = ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)]
        self.mounted = os.geteuid() == 0 and subprocess.run(mount, capture_output=True, check=False).returncode == 0
        self.ballast = path / "ballast"

    def fill(self) -> int:
        """Fill the disk (tmpfs only); returns the bytes written."""
        if not self.mounted:
            return 0
        written = 0
        block = b"\0" * (64 * 1024)
        try:
            with self.ballast.open("wb") as fh:
                while True:
                    fh.write(block)
                    fh.flush()
                    written += len(block)
        except OSError:
            pass
        # what the page cache still took in small writes: fill up to the last byte
        try:
            with self.ballast.open("ab") as fh:
                while True:
                    fh.write(b"\0" * 512)
                    fh.flush()
                    written += 512
        except OSError:
            pass
        return written

    def drain(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def close(self) -> None:
        self.drain()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
