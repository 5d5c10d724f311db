"""Metrics in one process: counters and histograms add up, overhead, labels, JSON summary, quantiles."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.calllog.record import AttemptRecord, CallRecord
from gateway.ops.metrics import metrics as metrics_endpoint
from gateway.telemetry.metrics import Metrics, estimate_quantile

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def record(**overrides: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "request_id": "r1",
        "started_at": 0.0,
        "model_id": "llama",
        "provider": "local",
        "deployment": "llama-local",
        "stream": False,
        "status_code": 200,
        "latency_ms": 400.0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost_usd": 0.001,
        "attempts": (AttemptRecord("llama-local", "local", "ok", 200, 380.0),),
        "user_id": "alice",
        "api_key_name": "key-alice",
    }
    fields.update(overrides)
    return CallRecord(**fields)


def scrape(metrics: Metrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def observed() -> Metrics:
    metrics = Metrics()
    metrics.observe_call(record(), upstream_wait_s=0.3992)
    metrics.observe_call(record(stream=True, ttft_ms=120.0, reasoning_tokens=3, cached_tokens=4), 0.3996)
    fallback = (
        AttemptRecord("llama-remote", "deepseek", "error", 502, 50.0),
        AttemptRecord("llama-local", "local", "ok", 200, 300.0),
    )
    metrics.observe_call(record(attempts=fallback, fallback_used=True, latency_ms=360.0), 0.35)
    failed = (
        AttemptRecord("llama-local", "local", "timeout", None, 1000.0),
        AttemptRecord("llama-remote", "deepseek", "error", 503, 80.0),
    )
    metrics.observe_call(
        record(status_code=503, provider="deepseek", deployment="llama-remote", attempts=failed, cost_usd=0.0,
               prompt_tokens=0, completion_tokens=0, latency_ms=1100.0),
        1.08,
    )  # fmt: skip
    metrics.rate_limited("client", "llama")
    metrics.rate_limited("client", "llama")
    metrics.rate_limited("deployment", "llama")
    metrics.set_deployment_state("llama", "llama-remote", healthy=False, circuit="open")
    metrics.set_deployment_state("llama", "llama-local", healthy=True, circuit="closed")
    metrics.set_call_log({"queue_depth": 2, "rows_written": 40, "rows_lost": 1, "not_a_counter": 9})
    return metrics


def test_request_counters_add_up(observed: Metrics) -> None:
    s = scrape(observed)
    ok = value(s, "gateway_requests_total", model="llama", provider="local", deployment="llama-local", status="200")
    failed = value(
        s, "gateway_requests_total", model="llama", provider="deepseek", deployment="llama-remote", status="503"
    )
    assert (ok, failed) == (3, 1)
    assert value(s, "gateway_request_duration_seconds_count", model="llama", provider="local", stream="false") == 2
    assert value(s, "gateway_request_duration_seconds_count", model="llama", provider="local", stream="true") == 1
    total = value(s, "gateway_request_duration_seconds_sum", model="llama", provider="local", stream="false")
    assert total == pytest.approx(0.76)
    assert value(s, "gateway_ttft_seconds_count", model="llama", provider="local") == 1
    assert value(s, "gateway_ttft_seconds_sum", model="llama", provider="local") == pytest.approx(0.12)


def test_upstream_attempts_retries_and_fallbacks(observed: Metrics) -> None:
    s = scrape(observed)
    attempts = {"deployment": "llama-remote", "provider": "deepseek", "outcome": "error"}
    assert value(s, "gateway_upstream_attempts_total", **attempts) == 2
    assert value(s, "gateway_upstream_attempts_total", deployment="llama-local", provider="local", outcome="ok") == 3
    assert value(s, "gateway_upstream_duration_seconds_sum", **attempts) == pytest.approx(0.13)
    assert value(s, "gateway_upstream_duration_seconds_bucket", le="0.1", **attempts) == 2
    assert value(s, "gateway_retries_total", model="llama") == 2
    assert value(s, "gateway_fallbacks_total", model="llama") == 1  # the failed call does not count


def test_skipped_attempts_are_not_retries() -> None:
    metrics = Metrics()
    attempts = (
        AttemptRecord("llama-remote", "deepseek", "skipped", None, 0.0),
        AttemptRecord("llama-local", "local", "ok", 200, 300.0),
    )
    metrics.observe_call(record(attempts=attempts), 0.3)
    s = scrape(metrics)
    names = {name for name, _ in s}
    assert "gateway_retries_total" not in names
    assert "gateway_fallbacks_total" not in names
    assert value(s, "gateway_upstream_attempts_total", deployment="llama-local", provider="local", outcome="ok") == 1
    assert not [labels for name, labels in s if name == "gateway_upstream_attempts_total" and "skipped" in str(labels)]


def test_overhead_is_latency_minus_upstream_wait(observed: Metrics) -> None:
    s = scrape(observed)
    assert value(s, "gateway_overhead_seconds_count") == 4
    # 0.8 ms + 0.4 ms + 10 ms + 20 ms of gateway time
    assert value(s, "gateway_overhead_seconds_sum") == pytest.approx(0.0312)
    assert value(s, "gateway_overhead_seconds_bucket", le="5e-05") == 0
    assert value(s, "gateway_overhead_seconds_bucket", le="0.0005") == 1
    assert value(s, "gateway_overhead_seconds_bucket", le="0.001") == 2
    assert value(s, "gateway_overhead_seconds_bucket", le="0.1") == 4


def test_overhead_never_negative() -> None:
    metrics = Metrics()
    metrics.observe_call(record(latency_ms=100.0), upstream_wait_s=0.2)
    s = scrape(metrics)
    assert value(s, "gateway_overhead_seconds_sum") == 0
    assert value(s, "gateway_overhead_seconds_bucket", le="5e-05") == 1


def test_tokens_and_cost(observed: Metrics) -> None:
    s = scrape(observed)
    tokens = {kind: value(s, "gateway_tokens_total", model="llama", provider="local", type=kind) for kind in
              ("prompt", "completion", "reasoning", "cached")}  # fmt: skip
    assert tokens == {"prompt": 30, "completion": 15, "reasoning": 3, "cached": 4}
    assert value(s, "gateway_cost_usd_total", model="llama", provider="local") == pytest.approx(0.003)


def test_gauges_and_rate_limits(observed: Metrics) -> None:
    s = scrape(observed)
    assert value(s, "gateway_deployment_healthy", model="llama", deployment="llama-remote") == 0
    assert value(s, "gateway_deployment_healthy", model="llama", deployment="llama-local") == 1
    assert value(s, "gateway_deployment_circuit_state", model="llama", deployment="llama-remote") == 2
    assert value(s, "gateway_rate_limited_total", scope="client", model="llama") == 2
    assert value(s, "gateway_call_log_queue_depth") == 2
    assert value(s, "gateway_call_log_rows_written") == 40
    assert value(s, "gateway_call_log_rows_lost") == 1
    with pytest.raises(ValueError, match="unknown circuit state"):
        observed.set_deployment_state("llama", "llama-local", healthy=True, circuit="melted")


def test_no_user_or_key_labels(observed: Metrics) -> None:
    body, _ = observed.render()
    labels = {k for family in text_string_to_metric_families(body.decode()) for s in family.samples for k in s.labels}
    assert labels <= {"model", "provider", "deployment", "status", "stream", "outcome", "type", "scope", "le"}
    assert b"alice" not in body


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_call(record(), 0.39)
    assert (
        value(scrape(first), "gateway_overhead_seconds_count"),
        value(scrape(second), "gateway_overhead_seconds_count"),
    ) == (1, 0)


def test_summary(observed: Metrics) -> None:
    summary = observed.summary()
    assert summary["mode"] == "single"
    assert (summary["requests"], summary["errors"], summary["fallbacks"]) == (4, 1, 1)
    llama = summary["models"]["llama"]
    assert (llama["requests"], llama["errors"], llama["fallbacks"], llama["retries"]) == (4, 1, 1, 2)
    assert llama["avg_latency_ms"] == pytest.approx((400 + 400 + 360 + 1100) / 4)
    # buckets: 3 calls in (0.25, 0.5], 1 in (1, 2.5]; p50 rank 2 of 3 in that bucket
    assert llama["p50_latency_ms"] == pytest.approx(250 + 250 * 2 / 3, abs=0.01)
    assert llama["p95_latency_ms"] == pytest.approx(1000 + 1500 * (3.8 - 3), abs=0.01)
    assert llama["p50_ttft_ms"] == pytest.approx(100 + 150 * 0.5)
    assert llama["tokens"] == {"prompt": 30, "completion": 15, "reasoning": 3, "cached": 4}
    assert llama["cost_usd"] == pytest.approx(0.003)
    assert summary["overhead_ms"]["avg"] == pytest.approx(31.2 / 4)
    assert summary["upstream_attempts"] == {
        "llama-local": {"ok": 3, "timeout": 1},
        "llama-remote": {"error": 2},
    }
    assert summary["rate_limited"] == {"client": {"llama": 2}, "deployment": {"llama": 1}}
    assert summary["call_log"] == {
        "queue_depth": 2, "queue_capacity": 0, "rows_written": 40, "rows_spooled": 0, "rows_lost": 1,
        "rows_rejected": 0, "rows_reduced": 0, "write_errors": 0, "batches": 0,
    }  # fmt: skip
    assert summary["uptime_s"] >= 0


def test_summary_when_empty() -> None:
    summary = Metrics().summary()
    assert (summary["requests"], summary["models"], summary["overhead_ms"]["p50"]) == (0, {}, None)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.5, 0.75),  # rank 5: the 2nd of the 4 counts in (0.5, 1]
        (0.1, 0.5 * 1 / 3),  # rank 1 in the first bucket (0, 0.5] holding 3
        (0.99, 2.0),  # beyond the last finite bound: that bound
    ],
)
def test_estimate_quantile(q: float, expected: float) -> None:
    buckets = [(0.5, 3.0), (1.0, 7.0), (2.0, 9.0), (float("inf"), 10.0)]
    assert estimate_quantile(q, buckets) == pytest.approx(expected)


def test_estimate_quantile_without_data() -> None:
    assert estimate_quantile(0.5, []) is None
    assert estimate_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None


def test_multiproc_dir_without_env_is_refused(tmp_path: Any) -> None:
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        Metrics(str(tmp_path))


class FakeCallLog:
    def counters(self) -> dict[str, int]:
        return {"queue_depth": 5, "rows_lost": 0}


@pytest.fixture
def client(observed: Metrics) -> TestClient:
    app = Starlette(routes=[Route("/metrics", metrics_endpoint)])
    app.state.services = SimpleNamespace(metrics=observed, call_log=FakeCallLog())
    return TestClient(app)


def test_endpoint_serves_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name for f in text_string_to_metric_families(response.text)}
    assert {"gateway_requests", "gateway_overhead_seconds", "gateway_call_log_rows_lost"} <= families
    assert "gateway_call_log_queue_depth 5.0" in response.text  # refreshed at scrape time


@pytest.mark.parametrize(
    ("url", "headers"), [("/metrics?format=json", {}), ("/metrics", {"Accept": "application/json"})]
)
def test_endpoint_serves_json(client: TestClient, url: str, headers: dict[str, str]) -> None:
    response = client.get(url, headers=headers)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["requests"], body["call_log"]["queue_depth"]) == (4, 5)


def test_explicit_format_beats_accept_header(client: TestClient) -> None:
    response = client.get("/metrics?format=prometheus", headers={"Accept": "application/json"})
    assert response.headers["content-type"].startswith("text/plain")
