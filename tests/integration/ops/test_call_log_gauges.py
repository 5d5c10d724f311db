"""Call-log gauges from a real two-worker gateway: each worker publishes its own writer counters on a timer, so
one scrape, answered by either worker, reports the rows of both."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx

from tests.integration.ops.test_metrics_workers import MODELS, samples, wait_for_workers
from tests.support.gateway import ProcessGateway, base_env, write_config

PUBLISH_WAIT_S = 2.5  # the workers publish every second


def logged_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        count: int = conn.execute("select count(*) from api_logs").fetchone()[0]
        return count


def test_one_scrape_reports_every_workers_call_log(tmp_path: Path) -> None:
    prom = tmp_path / "prom"
    env = {**base_env(tmp_path), **write_config(tmp_path, MODELS), "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    env["LOG_LEVEL"] = "INFO"
    n = 30
    db = Path(env["SQLITE_DB_PATH"])
    with ProcessGateway(env, workers=2) as gw:
        wait_for_workers(prom, 2)
        for i in range(n):  # a new connection each, so both workers take calls
            body = {"model": "mock", "messages": [{"role": "user", "content": f"q{i}"}]}
            assert httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=20).status_code == 200
        deadline = time.monotonic() + 20
        while logged_rows(db) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert logged_rows(db) == n
        time.sleep(PUBLISH_WAIT_S)
        # One scrape only: the worker that answers it refreshes its own gauges, so a second scrape landing on the
        # other worker would hide a missing publisher.
        text = httpx.get(f"{gw.url}/metrics", timeout=20).text
    assert samples(text, "gateway_call_log_rows_written")[0].value == n
    assert samples(text, "gateway_call_log_queue_depth")[0].value == 0
    assert samples(text, "gateway_call_log_queue_capacity")[0].value == 2 * 10_000  # both live workers' queues
    assert samples(text, "gateway_call_log_rows_lost")[0].value == 0
    calls = [json.loads(line) for line in gw.read_output().splitlines() if '"msg":"call"' in line]
    assert len({c["pid"] for c in calls}) >= 2, "one worker took every call: the test proves nothing"
