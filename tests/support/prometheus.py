"""A real Prometheus server (Debian's /usr/bin/prometheus) on a loopback port, its TSDB under a test directory."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.gateway import free_port


class PrometheusServer:
    """Scrapes `targets` (host:port) as job `gateway` every `scrape_interval`; loads `rule_files` if given."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        targets: Sequence[str],
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [{"job_name": "gateway", "static_configs": [{"targets": list(targets)}]}],
        }
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "prometheus.log"
        self.args = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> PrometheusServer:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready:\n{self.log_path.read_text()}")

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer."""
        body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant vector query's result."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(
        self, expr: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Query `expr` until `done(result)`; the last result either way."""
        deadline = time.monotonic() + timeout
        result = self.query(expr)
        while not done(result) and time.monotonic() < deadline:
            time.sleep(0.25)
            result = self.query(expr)
        return result

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
