"""scripts/view_logs.py reads what a real gateway wrote, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from gateway.settings import ROOT
from tests.conftest import GatewayFactory
from tests.integration.calllog.conftest import LogBackend
from tests.integration.core.conftest import models, route


def test_view_logs_shows_requests_usage_errors_and_a_conversation(
    gateway_factory: GatewayFactory, upstreams, log_backend: LogBackend
) -> None:
    a, b = upstreams
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)), **log_backend.env)
    for _ in range(3):
        httpx.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "Tell me about gateways"}]},
        )
    a.behaviour = b.behaviour = {"status": 500}
    httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    env = {"PATH": os.environ.get("PATH", ""), **log_backend.env}
    result = subprocess.run(
        [sys.executable, "scripts/view_logs.py", "--limit", "5"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Tell me about gateways" in out  # the sample conversation
    assert "[a]" in out  # its response
    assert out.count("502") >= 1  # the failed call among recent errors
    assert "openai" in out and ("| m" in out or " m " in out)
    assert "sk-test" not in out


def test_view_logs_on_an_empty_or_missing_database(tmp_path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "SQLITE_DB_PATH": str(tmp_path / "none.db")}
    result = subprocess.run(
        [sys.executable, "scripts/view_logs.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode in (0, 1)
    assert "Traceback" not in result.stderr and (result.stdout + result.stderr).strip()
