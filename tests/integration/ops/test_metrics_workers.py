"""/metrics from a real multi-worker gateway: counters add up across workers and match the traffic sent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

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


def samples(text: str, name: str) -> list[Sample]:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name]


def wait_for_workers(prom: Path, workers: int, timeout: float = 30) -> None:
    """Wait until `workers` processes have built their metrics (each writes its own files, named by pid).

    /ready answers as soon as one worker is up; traffic sent before the others are would all go to that one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len({path.stem.rsplit("_", 1)[-1] for path in prom.glob("gauge_livesum_*.db")}) >= workers:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {workers} workers started within {timeout} s: {sorted(prom.iterdir())}")


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
        wait_for_workers(tmp_path / "prom", 2)
        for i in range(n_ok):  # a new connection each: the workers share the listening socket, either may accept
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
            # model="mock" only: whether calls for unknown models are counted (unlabelled) is not this test's concern
            total = sum(s.value for s in samples(text, "gateway_requests_total") if s.labels["model"] == "mock")
            assert total == n_ok + n_stream
        tokens = {s.labels["type"]: s.value for s in samples(text, "gateway_tokens_total")}
        assert tokens["completion"] == 4 * (n_ok + n_stream)
        counted = sum(s.value for s in samples(text, "gateway_requests_total"))
        assert samples(text, "gateway_overhead_seconds_count")[0].value == counted  # one observation per call
        summary = http.get("/metrics?format=json").json()
        assert summary["models"]["mock"]["requests"] == n_ok + n_stream
        labels = {k for fam in text_string_to_metric_families(text) for s in fam.samples for k in s.labels}
        assert not labels & {"user", "api_key", "key", "client_ip"}
    output = gw.read_output()
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"msg":"call"' in line]
    calls = [c for c in logged if c["model"] == "mock"]
    assert len(calls) == n_ok + n_stream, output[-2000:]
    assert {"request_id", "model", "deployment", "status", "latency_ms"} <= set(calls[0])
    pids = {c["pid"] for c in calls}
    assert all(isinstance(pid, int) for pid in pids)
    assert len(pids) >= 2, f"one worker served every call ({pids}): the sums above proved nothing about adding up"
