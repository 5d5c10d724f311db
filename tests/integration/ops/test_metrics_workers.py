"""/metrics from a real multi-worker gateway: counters add up across workers and match the traffic sent."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import ProcessGateway, base_env, write_config

MODELS = {
    "models": [
        {
            "id": "mock",
            "pricing": {"prompt": "1", "completion": "1"},
            "route": [{"kind": "mock", "name": "m1", "mock": {"completion_tokens": 4}}],
        }
    ]
}


def samples(text: str, name: str) -> list:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name]


def test_metrics_add_up_across_workers(tmp_path: Path) -> None:
    env = {
        **base_env(tmp_path),
        **write_config(tmp_path, MODELS),
        "CALL_LOG_SYNC": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "LOG_LEVEL": "INFO",
    }
    n_ok, n_stream, n_missing = 40, 10, 5
    with ProcessGateway(env, workers=2) as gw, httpx.Client(base_url=gw.url, timeout=20) as http:
        for i in range(n_ok):
            resp = http.post(
                "/v1/chat/completions",
                json={"model": "mock", "messages": [{"role": "user", "content": f"q{i}"}]},
                headers={"Connection": "close"},
            )
            assert resp.status_code == 200
        for _ in range(n_stream):
            with http.stream(
                "POST",
                "/v1/chat/completions",
                json={"model": "mock", "stream": True, "messages": [{"role": "user", "content": "s"}]},
            ) as resp:
                resp.read()
        for _ in range(n_missing):
            assert (
                http.post(
                    "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}
                ).status_code
                == 404
            )
        text = ""
        for _ in range(6):  # scrape a few times: any worker may answer, all must agree
            text = http.get("/metrics", headers={"Connection": "close"}).text
            total = sum(s.value for s in samples(text, "gateway_requests_total"))
            assert total == n_ok + n_stream
        tokens = {s.labels["type"]: s.value for s in samples(text, "gateway_tokens_total")}
        assert tokens["completion"] == 4 * (n_ok + n_stream)
        assert samples(text, "gateway_overhead_seconds_count")[0].value == n_ok + n_stream
        summary = http.get("/metrics?format=json").json()
        assert summary["models"]["mock"]["requests"] == n_ok + n_stream
        labels = {k for fam in text_string_to_metric_families(text) for s in fam.samples for k in s.labels}
        assert not labels & {"user", "api_key", "key", "client_ip"}
    output = gw.read_output()
    calls = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"msg":"call"' in line]
    assert len(calls) == n_ok + n_stream, output[-2000:]
    assert {"request_id", "model", "deployment", "status", "latency_ms"} <= set(calls[0])
    assert all(isinstance(c["pid"], int) for c in calls)
