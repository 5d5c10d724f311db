"""Exit codes of a real multi-worker gateway: a bad config fails the unit (non-zero), SIGTERM stops it cleanly (0).

systemd's Restart=on-failure and a `failed` unit state both depend on the supervisor's exit code."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.server import STARTUP_FAILURE
from gateway.settings import ROOT
from tests.support.gateway import ProcessGateway, base_env, free_port, write_config

GOOD = {"models": [{"id": "mock", "route": [{"kind": "mock", "mock": {"completion_tokens": 2}}]}]}
BAD = {"models": [{"id": "mock", "route": [{"kind": "mock", "weight": -1}]}]}
BOUND_S = 60


def test_bad_config_with_two_workers_exits_non_zero(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **base_env(tmp_path),
        **write_config(tmp_path, BAD),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "PYTHONUNBUFFERED": "1",
    }
    args = ["--host", "127.0.0.1", "--port", str(free_port()), "--workers", "2"]
    started = time.monotonic()
    # its own session, so a hung run can be killed with its workers
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=BOUND_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"gateway --workers 2 with a bad config still running after {BOUND_S} s") from None
    assert proc.returncode == STARTUP_FAILURE, stderr[-3000:]
    assert "configuration error" in stderr and "models[0].route[0].weight" in stderr
    assert time.monotonic() - started < BOUND_S


def test_sigterm_stops_two_workers_with_exit_0(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), **write_config(tmp_path, GOOD), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    gw = ProcessGateway(env, workers=2).start()
    try:
        gw.signal(signal.SIGTERM)
        assert gw.wait(timeout=30) == 0, gw.read_output()[-3000:]
    finally:
        gw.stop()


SLOW = {"models": [{"id": "mock", "route": [{"kind": "mock", "mock": {"completion_tokens": 2, "ttft_ms": 3000}}]}]}


def test_sigterm_stops_listening_at_once_while_two_workers_drain(tmp_path: Path) -> None:
    """While two workers drain after SIGTERM, a new connection is answered or refused (a load balancer then moves
    on to another replica), never accepted by the kernel into a backlog that no worker will serve and then reset;
    the call in flight still gets its answer."""
    env = {**base_env(tmp_path), **write_config(tmp_path, SLOW), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    gw = ProcessGateway(env, workers=2).start()
    try:
        body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        outcomes: list[str] = []
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.post, f"{gw.url}/v1/chat/completions", json=body, timeout=30)
            time.sleep(1.0)  # the call is at the (slow) upstream for 2 s more
            gw.signal(signal.SIGTERM)
            for _ in range(25):
                time.sleep(0.1)
                try:
                    outcomes.append(str(httpx.get(f"{gw.url}/health", timeout=5).status_code))
                except httpx.ConnectError:
                    outcomes.append("refused")
                except httpx.TransportError as exc:  # accepted, then dropped unanswered
                    outcomes.append(type(exc).__name__)
            assert in_flight.result().status_code == 200
        assert set(outcomes) <= {"200", "503", "refused"}, outcomes
        assert "refused" in outcomes  # it stopped listening well before the drain ended
        assert gw.wait(timeout=30) == 0, gw.read_output()[-3000:]
    finally:
        gw.stop()
