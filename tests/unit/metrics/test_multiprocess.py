"""Multiprocess mode: worker processes write their own files and one render adds them all up.

prometheus_client picks its value class when first imported, and this test process imported it without
PROMETHEUS_MULTIPROC_DIR; so the workers and the renderer are fresh subprocesses with the variable set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.metrics import prepare_multiproc_dir

ROOT = Path(__file__).resolve().parents[3]

WORKER = """
import os, sys
from gateway.telemetry.metrics import Metrics, mark_worker_dead
from gateway.calllog.record import AttemptRecord, CallRecord

calls, healthy, circuit, queue_depth, rows_lost, graceful = sys.argv[1:]
metrics = Metrics()
attempts = (AttemptRecord("d-remote", "remote", "error", 502, 20.0), AttemptRecord("d-local", "local", "ok", 200, 80.0))
for i in range(int(calls)):
    record = CallRecord(f"r{i}", 0.0, "m", "local", "d-local", False, 200, 100.0, prompt_tokens=10,
                        completion_tokens=2, cost_usd=0.5, attempts=attempts)
    metrics.observe_call(record, upstream_wait_s=0.099)
metrics.set_deployment_state("m", "d-remote", healthy=healthy == "1", circuit=circuit)
metrics.set_call_log({"queue_depth": int(queue_depth), "rows_written": int(calls), "rows_lost": int(rows_lost)})
print("ready", flush=True)
sys.stdin.readline()  # stay alive (and "live") until the test says stop
if graceful == "1":
    mark_worker_dead(os.getpid())
"""

RENDER = """
import json
from gateway.telemetry.metrics import Metrics
metrics = Metrics()
body, content_type = metrics.render()
print(json.dumps({"text": body.decode(), "content_type": content_type, "summary": metrics.summary()}))
"""

# calls, healthy, circuit, queue_depth, rows_lost, graceful exit
WORKERS = [
    ("3", "1", "closed", "2", "0", "1"),
    ("5", "0", "open", "4", "1", "0"),
    ("7", "1", "half_open", "1", "0", "0"),
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_99999999.db").write_bytes(b"stale from an earlier run")
    prepare_multiproc_dir(str(directory))
    assert list(directory.iterdir()) == []
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}


@pytest.fixture
def workers(env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args], env=env, cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        for args in WORKERS
    ]  # fmt: skip
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        yield procs
    finally:
        stop(procs)


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.communicate("stop\n", timeout=30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def render(env: dict[str, str]) -> tuple[dict[tuple[str, tuple[tuple[str, str], ...]], float], dict[str, Any]]:
    out = subprocess.run([sys.executable, "-c", RENDER], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["content_type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(result["text"])
        for s in family.samples
    }
    return samples, result["summary"]


def test_counters_are_summed_across_processes(env: dict[str, str], workers: list[subprocess.Popen[str]]) -> None:
    s, summary = render(env)
    ok = (("deployment", "d-local"), ("model", "m"), ("provider", "local"), ("status", "200"))
    assert s[("gateway_requests_total", ok)] == 15
    assert s[("gateway_overhead_seconds_count", ())] == 15
    assert s[("gateway_overhead_seconds_sum", ())] == pytest.approx(15 * 0.001)
    assert s[("gateway_tokens_total", (("model", "m"), ("provider", "local"), ("type", "prompt")))] == 150
    assert s[("gateway_cost_usd_total", (("model", "m"), ("provider", "local")))] == pytest.approx(7.5)
    assert s[("gateway_fallbacks_total", (("model", "m"),))] == 15
    attempts = (("deployment", "d-remote"), ("outcome", "error"), ("provider", "remote"))
    assert s[("gateway_upstream_attempts_total", attempts)] == 15
    assert s[("gateway_upstream_duration_seconds_bucket", tuple(sorted((*attempts, ("le", "0.025")))))] == 15
    # gauges: queue depth is a live sum, rows_lost a sum, health the worst live view
    assert s[("gateway_call_log_queue_depth", ())] == 7
    assert s[("gateway_call_log_rows_written", ())] == 15
    assert s[("gateway_call_log_rows_lost", ())] == 1
    assert s[("gateway_deployment_healthy", (("deployment", "d-remote"), ("model", "m")))] == 0
    assert s[("gateway_deployment_circuit_state", (("deployment", "d-remote"), ("model", "m")))] == 2
    assert summary["mode"] == "multiprocess"
    assert (summary["requests"], summary["fallbacks"], summary["models"]["m"]["retries"]) == (15, 15, 15)
    assert summary["models"]["m"]["tokens"]["completion"] == 30
    assert summary["call_log"]["rows_lost"] == 1


def test_finished_workers_keep_their_counts_but_not_their_live_gauges(
    env: dict[str, str], workers: list[subprocess.Popen[str]]
) -> None:
    stop(workers)  # the first exits gracefully (mark_worker_dead), the others as if they crashed
    assert [proc.returncode for proc in workers] == [0, 0, 0]
    s, summary = render(env)
    assert summary["requests"] == 15
    assert s[("gateway_call_log_rows_lost", ())] == 1  # still visible for alerting after the worker is gone
    assert s.get(("gateway_call_log_queue_depth", ()), 0) == 0
    assert not [key for key in s if key[0].startswith("gateway_deployment_")]
    live_files = {path.name for path in Path(env["PROMETHEUS_MULTIPROC_DIR"]).glob("gauge_live*")}
    assert not {name for name in live_files for proc in workers if name.endswith(f"_{proc.pid}.db")}
