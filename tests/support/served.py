"""Gateways (and other servers) as real OS processes, their stdout and stderr in separate files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

STOP_WITHIN_S = 10.0


class Served:
    """A server process whose stdout and stderr go to separate files, so a test can tell which stream a line took."""

    def __init__(self, args: list[str], env: Mapping[str, str], cwd: Path, directory: Path, port: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.stdout_path = directory / "stdout.txt"
        self.stderr_path = directory / "stderr.txt"
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.proc = subprocess.Popen(args, env=dict(env), cwd=cwd, stdout=out, stderr=err)
        self.returncode: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self, timeout: float = 20) -> Served:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.stderr}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not become ready within {timeout} s:\n{self.stderr}")

    def terminate(self, within: float = STOP_WITHIN_S) -> tuple[int, float]:
        """SIGTERM, then the exit code and how long the exit took."""
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.returncode = self.proc.wait(timeout=within)
        return self.returncode, time.monotonic() - began

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def isolated_env(directory: Path, **extra: str) -> dict[str, str]:
    """Only PATH from the test runner's environment: no stray key or config variable may change the outcome."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "HOST": "127.0.0.1",
        "SQLITE_DB_PATH": str(directory / "calls.db"),
        "VAR_DIR": str(directory / "var"),
        "CALL_LOG_SPOOL_DIR": str(directory / "spool"),
        **extra,
    }


GATEWAY_SERVE = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1"]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The lines of text that are JSON objects (the gateway's log format)."""
    lines = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines
