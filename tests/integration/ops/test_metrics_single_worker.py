"""One worker with PROMETHEUS_MULTIPROC_DIR set, as the Dockerfile and the systemd unit run it: the directory is
created when missing, and an earlier run's files are removed so /metrics counts only this run's traffic."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import ProcessGateway, base_env, write_config

MODELS = {"models": [{"id": "mock", "route": [{"kind": "mock", "name": "m1", "mock": {"completion_tokens": 2}}]}]}


def served_calls(gw: ProcessGateway, n: int) -> float:
    """Send `n` calls, then return gateway_requests_total as /metrics reports it."""
    with httpx.Client(base_url=gw.url, timeout=20) as http:
        for i in range(n):
            body = {"model": "mock", "messages": [{"role": "user", "content": f"q{i}"}]}
            assert http.post("/v1/chat/completions", json=body).status_code == 200
        text = http.get("/metrics").text
    families = text_string_to_metric_families(text)
    return sum(s.value for fam in families for s in fam.samples if s.name == "gateway_requests_total")


def test_one_worker_counts_only_this_runs_traffic(tmp_path: Path) -> None:
    prom = tmp_path / "prom"  # missing: the first run must create it
    env = {**base_env(tmp_path), **write_config(tmp_path, MODELS), "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    with ProcessGateway(env, workers=1) as earlier:
        assert served_calls(earlier, 3) == 3
    assert earlier.proc is not None and earlier.proc.returncode == 0
    assert list(prom.glob("counter_*.db")), "the earlier run left no counter file: the test proves nothing"
    with ProcessGateway(env, workers=1) as gw:
        assert served_calls(gw, 2) == 2
