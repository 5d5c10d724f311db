"""Run the real gateway under uvicorn on a loopback port: in a thread (fast) or as a subprocess (signals, workers)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from gateway.app import create_app
from gateway.settings import ROOT, Settings


def write_config(directory: Path, models: Any, routing: Any | None = None) -> dict[str, str]:
    """Write models.yaml (and routing.yaml) into directory; returns the env that points at them."""
    directory.mkdir(parents=True, exist_ok=True)
    models_path = directory / "models.yaml"
    models_path.write_text(models if isinstance(models, str) else yaml.safe_dump(models, sort_keys=False))
    routing_path = directory / "routing.yaml"
    if routing is not None:
        routing_path.write_text(routing if isinstance(routing, str) else yaml.safe_dump(routing, sort_keys=False))
    return {"MODELS_CONFIG": str(models_path), "ROUTING_CONFIG": str(routing_path)}


def base_env(directory: Path) -> dict[str, str]:
    """Isolated defaults for a test gateway: its own SQLite file and spool, synchronous call log."""
    return {
        "SQLITE_DB_PATH": str(directory / "calls.db"),
        "CALL_LOG_SPOOL_DIR": str(directory / "spool"),
        "CALL_LOG_SYNC": "true",
        "STREAM_KEEPALIVE_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",  # where the test server listens: keyless admin routes answer only on loopback
    }


class ThreadGateway:
    """The gateway app served by uvicorn in a background thread, on 127.0.0.1 and a free port."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.settings = Settings.from_env(dict(env), root=ROOT)
        self.app = create_app(self.settings, own_logging=False)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", loop="asyncio", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def services(self) -> Any:
        return self.app.state.services

    def row(self, request_id: str) -> dict[str, Any]:
        """The one call-log row of a call (the test gateway writes SQLite synchronously)."""
        with contextlib.closing(sqlite3.connect(self.settings.env["SQLITE_DB_PATH"])) as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(r) for r in conn.execute("select * from api_logs where request_id = ?", (request_id,))]
        assert len(rows) == 1, f"expected one row for {request_id}, got {len(rows)}"
        return rows[0]

    def start(self) -> ThreadGateway:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("gateway failed to start (see log output)")
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start within 15 s")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> ThreadGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ProcessGateway:
    """`python -m gateway serve` as a real OS process (for signals, several workers, start-up failures)."""

    def __init__(self, env: Mapping[str, str], workers: int = 1, extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.args = [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            *extra_args,
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 30) -> ProcessGateway:
        self.proc = subprocess.Popen(
            self.args, env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if wait:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.read_output()}")
                try:
                    if httpx.get(f"{self.url}/ready", timeout=0.5).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raise RuntimeError(f"gateway did not become ready:\n{self.stop()}")
        return self

    def read_output(self) -> str:
        if self.proc is not None and self.proc.stdout is not None and self.proc.poll() is not None:
            if not self.proc.stdout.closed:
                self.output += self.proc.stdout.read()
                self.proc.stdout.close()
        return self.output

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        self.read_output()
        return code

    def stop(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.read_output()

    def __enter__(self) -> ProcessGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
