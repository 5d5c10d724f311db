"""Prometheus metrics for the gateway, in one process or across uvicorn workers (prometheus_client multiprocess mode).

Multiprocess mode: prometheus_client picks its value class (in-memory or mmap files) once, when it is first
imported, from the env var PROMETHEUS_MULTIPROC_DIR. The process manager (`gateway serve --workers N`) must
therefore call `prepare_multiproc_dir(path)` and put the variable in `os.environ` before any worker starts; each
worker then builds one `Metrics()` in its lifespan and calls `mark_worker_dead(os.getpid())` when it stops.
Only a worker can read its call-log writer's counters, so each publishes them on a timer (see gateway.app).
"""

from __future__ import annotations

import glob
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.samples import Sample

from gateway.calllog.record import CallRecord
from gateway.telemetry.routing_metrics import RoutingMetrics

__all__ = ["MULTIPROC_ENV", "Metrics", "estimate_quantile", "mark_worker_dead", "prepare_multiproc_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# LLM calls run from well under a second to minutes; the overhead histogram is the gateway's own time.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
OVERHEAD_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)

CIRCUIT_STATES: Mapping[str, int] = {"closed": 0, "half_open": 1, "open": 2}
TOKEN_TYPES = ("prompt", "completion", "reasoning", "cached")

# Call-log writer counters, exposed as gauges named gateway_call_log_<key>. Each worker has its own writer.
# queue_depth and queue_capacity are levels: "livesum" adds the live workers' queues (a dead worker's queue is gone).
# The others are cumulative per writer: "sum" keeps a finished worker's last value, so e.g. rows_lost stays
# visible after uvicorn replaced the worker that lost the rows ("livesum" would silently drop it). The files are
# keyed by pid: a new worker that reuses a dead worker's pid overwrites its values (rare; accepted).
CALL_LOG_GAUGES: Mapping[str, tuple[str, Literal["livesum", "sum"]]] = {
    "queue_depth": ("Call-log rows waiting in the writer queues", "livesum"),
    "queue_capacity": ("Call-log rows the writer queues can hold (CALL_LOG_QUEUE_MAX per worker)", "livesum"),
    "rows_written": ("Call-log rows written to the database since start", "sum"),
    "rows_spooled": ("Call-log rows spooled to disk because the database failed", "sum"),
    "rows_lost": ("Call-log rows dropped; alert when > 0", "sum"),
    "rows_rejected": ("Call-log rows the database refused", "sum"),
    "rows_reduced": ("Call-log rows written without content: it could not be serialised", "sum"),
    "write_errors": ("Call-log batch write errors", "sum"),
    "batches": ("Call-log batches written", "sum"),
}


class Metrics:
    """All gateway metrics; one instance per worker process, owned by the lifespan.

    Label values must come from config (model ids, deployment and provider names) so cardinality stays bounded:
    callers report only calls for known models, never a model name a client made up, and never a user or key.
    In multiprocess mode values live in per-pid files, so a second instance in the same process would share them.
    """

    def __init__(self, multiproc_dir: str | None = None, observe_calls: bool = True) -> None:
        self._dir = _resolve_multiproc_dir(multiproc_dir)
        self._observe_calls = observe_calls  # METRICS_ENABLED=false: calls are not counted (gauges still are)
        self._started = time.time()
        self._children: dict[tuple[Any, ...], Any] = {}
        self._published: dict[str, int] = {}
        r = self._registry = CollectorRegistry()
        self._requests = Counter(
            "gateway_requests_total",
            "Client calls by final status",
            ["model", "provider", "deployment", "status"],
            registry=r,
        )
        self._duration = Histogram(
            "gateway_request_duration_seconds",
            "End-to-end call latency",
            ["model", "provider", "stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._ttft = Histogram(
            "gateway_ttft_seconds", "Time to first token", ["model", "provider"], buckets=TTFT_BUCKETS, registry=r
        )
        self._overhead = Histogram(
            "gateway_overhead_seconds",
            "Call latency minus upstream wait: the gateway's own time",
            [],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        upstream = ["deployment", "provider", "outcome"]
        self._upstream = Histogram(
            "gateway_upstream_duration_seconds",
            "Duration of one upstream attempt",
            upstream,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._attempts = Counter("gateway_upstream_attempts_total", "Upstream attempts", upstream, registry=r)
        self._tokens = Counter("gateway_tokens_total", "Tokens by type", ["model", "provider", "type"], registry=r)
        self._cost = Counter("gateway_cost_usd_total", "Cost in US dollars", ["model", "provider"], registry=r)
        self._fallbacks = Counter(
            "gateway_fallbacks_total", "Calls that succeeded after more than one attempt", ["model"], registry=r
        )
        self._retries = Counter("gateway_retries_total", "Upstream attempts beyond the first", ["model"], registry=r)
        self._rate_limited = Counter(
            "gateway_rate_limited_total", "Requests refused by a gateway rate limit", ["scope", "model"], registry=r
        )
        # Each worker keeps its own health tracker and breakers. "livemin" shows 0 when any live worker sees the
        # deployment unhealthy and "livemax" the worst circuit among live workers: an alert must not depend on
        # which worker wrote last ("mostrecent" would flap), and dead workers' views are dropped.
        self._healthy = Gauge(
            "gateway_deployment_healthy",
            "1 when the deployment is healthy",
            ["model", "deployment"],
            multiprocess_mode="livemin",
            registry=r,
        )
        self._circuit = Gauge(
            "gateway_deployment_circuit_state",
            "Circuit breaker: 0 closed, 1 half_open, 2 open",
            ["model", "deployment"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self._shared_up: Gauge | None = None  # made at the first report: absent without REDIS_URL
        self._call_log = {
            key: Gauge(f"gateway_call_log_{key}", doc, multiprocess_mode=mode, registry=r)
            for key, (doc, mode) in CALL_LOG_GAUGES.items()
        }
        self.routing = RoutingMetrics(r)

    @property
    def multiprocess(self) -> bool:
        return self._dir is not None

    def observe_call(self, record: CallRecord, upstream_wait_s: float) -> None:
        """Record one finished call of a configured model; `upstream_wait_s` is the time spent waiting upstream."""
        if not self._observe_calls:
            return
        model, provider = record.model_id, record.provider
        child = self._child
        child(self._requests, model, provider, record.deployment, str(record.status_code)).inc()
        latency_s = record.latency_ms / 1000.0
        child(self._duration, model, provider, "true" if record.stream else "false").observe(latency_s)
        if record.ttft_ms is not None:
            child(self._ttft, model, provider).observe(record.ttft_ms / 1000.0)
        self._overhead.observe(max(0.0, latency_s - upstream_wait_s))
        tried = 0
        for attempt in record.attempts:
            if attempt.outcome == "skipped":  # never reached the upstream: not a retry, no duration
                continue
            tried += 1
            child(self._upstream, attempt.deployment, attempt.provider, attempt.outcome).observe(
                attempt.duration_ms / 1000.0
            )
            child(self._attempts, attempt.deployment, attempt.provider, attempt.outcome).inc()
        if tried > 1:
            child(self._retries, model).inc(tried - 1)
            if record.status_code < 400:
                child(self._fallbacks, model).inc()
        counts = (record.prompt_tokens, record.completion_tokens, record.reasoning_tokens, record.cached_tokens)
        for kind, count in zip(TOKEN_TYPES, counts, strict=True):
            if count > 0:  # skip zero increments: each one is a write in multiprocess mode
                child(self._tokens, model, provider, kind).inc(count)
        if record.cost_usd > 0:
            child(self._cost, model, provider).inc(record.cost_usd)
        if record.routing_reason.startswith("spill:"):
            self.routing.spilled(model, record.routing_reason.removeprefix("spill:"), record.cost_usd)

    def _child(self, metric: Any, *labels: str) -> Any:
        """The labelled child, cached: `labels()` validates and locks on every call (~5 us each, 8+ per call).
        Label values come from config, so the cache is as bounded as the metric's own children."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def set_deployment_state(self, model: str, deployment: str, healthy: bool, circuit: str) -> None:
        """Publish one deployment's health and breaker state (`circuit` is closed, half_open or open)."""
        try:
            state = CIRCUIT_STATES[circuit]
        except KeyError:
            raise ValueError(f"unknown circuit state {circuit!r}; expected one of {sorted(CIRCUIT_STATES)}") from None
        self._healthy.labels(model, deployment).set(1 if healthy else 0)
        self._circuit.labels(model, deployment).set(state)

    def set_shared_state(self, up: bool) -> None:
        """Whether this worker reaches the shared-state Redis (0 while any live worker does not)."""
        if self._shared_up is None:
            self._shared_up = Gauge(
                "gateway_shared_state_up",
                "1 when the shared-state Redis (REDIS_URL) answers; 0 while workers run on their own state",
                multiprocess_mode="livemin",
                registry=self._registry,
            )
        self._shared_up.set(1 if up else 0)

    def rate_limited(self, scope: str, model: str) -> None:
        """Count one refusal by a gateway limit; `scope` is e.g. deployment, model or client; `model` is configured."""
        self._rate_limited.labels(scope, model).inc()

    def set_call_log(self, counters: Mapping[str, int]) -> None:
        """Publish this worker's call-log writer counters (cumulative ints, plus the current queue depth)."""
        for key, value in counters.items():
            gauge = self._call_log.get(key)
            # unknown keys are ignored so a new writer counter cannot break scraping; unchanged values are
            # skipped because in multiprocess mode each set is a write to this worker's file
            if gauge is not None and self._published.get(key) != value:
                gauge.set(value)
                self._published[key] = value

    def render(self) -> tuple[bytes, str]:
        """Prometheus text exposition of every worker's metrics, and its content type."""
        return generate_latest(self._collecting_registry()), CONTENT_TYPE_LATEST

    def summary(self) -> dict[str, Any]:
        """Compact JSON for humans and jq, from the same samples as `render` (so across all workers)."""
        samples = [s for family in self._collecting_registry().collect() for s in family.samples]
        body = _Summary(samples).build()
        return {"mode": "multiprocess" if self.multiprocess else "single", "uptime_s": self._uptime(), **body}

    def _uptime(self) -> float:
        return round(time.time() - self._started, 1)

    def _collecting_registry(self) -> CollectorRegistry:
        if self._dir is None:
            return self._registry
        # Workers write their own mmap files; a fresh registry merges them all at scrape time.
        _prune_dead_workers(self._dir)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._dir)  # type: ignore[no-untyped-call]
        return registry


def prepare_multiproc_dir(path: str) -> None:
    """Create the multiprocess directory and remove stale *.db files; call before any worker starts."""
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)


def mark_worker_dead(pid: int, path: str | None = None) -> None:
    """Drop a finished worker's live gauges (its counters and histograms keep counting in the totals)."""
    directory = path or os.environ.get(MULTIPROC_ENV)
    if directory:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def estimate_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Quantile from cumulative (upper bound, count) buckets, interpolated like PromQL's histogram_quantile."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):  # the answer lies above the last finite bound: report that bound
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _resolve_multiproc_dir(explicit: str | None) -> str | None:
    env = os.environ.get(MULTIPROC_ENV)
    path = explicit or env
    mmap_values = bool(getattr(values.ValueClass, "_multiprocess", False))
    if path is None and not mmap_values:
        return None
    fix = f"set {MULTIPROC_ENV} in the environment before the process starts (before prometheus_client is imported)"
    if path is None or env is None or not mmap_values:
        raise RuntimeError(f"metrics: multiprocess mode is half configured; {fix}")
    if os.path.realpath(path) != os.path.realpath(env):
        raise RuntimeError(f"metrics: multiproc_dir {path!r} differs from {MULTIPROC_ENV}={env!r}; {fix}")
    if not os.path.isdir(path):
        raise RuntimeError(f"metrics: {MULTIPROC_ENV}={path!r} is not a directory; call prepare_multiproc_dir first")
    return path


def _prune_dead_workers(path: str) -> None:
    # uvicorn replaces a crashed worker without a hook to call mark_worker_dead, so the scrape does it: live
    # gauges of a process that no longer exists would otherwise stay in the livesum/livemin/livemax forever.
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid_text = os.path.basename(name)[: -len(".db")].rsplit("_", 1)[-1]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            mark_worker_dead(int(pid_text), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class _Summary:
    """Folds collected samples into the per-model JSON summary."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        self._by_name: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            self._by_name[sample.name].append(sample)

    def build(self) -> dict[str, Any]:
        models: dict[str, dict[str, Any]] = defaultdict(_empty_model)
        for s in self._by_name["gateway_requests_total"]:
            entry = models[s.labels["model"]]
            entry["requests"] += int(s.value)
            if int(s.labels["status"]) >= 400:
                entry["errors"] += int(s.value)
        for model, (total_s, count, buckets) in self._histograms("gateway_request_duration_seconds", "model").items():
            entry = models[model]
            entry["avg_latency_ms"] = _ms(total_s / count) if count else None
            entry["p50_latency_ms"] = _ms(estimate_quantile(0.5, buckets))
            entry["p95_latency_ms"] = _ms(estimate_quantile(0.95, buckets))
        for model, (_, _, buckets) in self._histograms("gateway_ttft_seconds", "model").items():
            models[model]["p50_ttft_ms"] = _ms(estimate_quantile(0.5, buckets))
        for s in self._by_name["gateway_tokens_total"]:
            models[s.labels["model"]]["tokens"][s.labels["type"]] += int(s.value)
        for s in self._by_name["gateway_cost_usd_total"]:
            models[s.labels["model"]]["cost_usd"] += s.value
        for name, key in (("gateway_fallbacks_total", "fallbacks"), ("gateway_retries_total", "retries")):
            for s in self._by_name[name]:
                models[s.labels["model"]][key] += int(s.value)
        for entry in models.values():
            entry["cost_usd"] = round(entry["cost_usd"], 6)
        overhead = self._histograms("gateway_overhead_seconds", None).get("", (0.0, 0.0, []))
        return {
            "requests": sum(m["requests"] for m in models.values()),
            "errors": sum(m["errors"] for m in models.values()),
            "fallbacks": sum(m["fallbacks"] for m in models.values()),
            "overhead_ms": {
                "avg": _ms(overhead[0] / overhead[1]) if overhead[1] else None,
                "p50": _ms(estimate_quantile(0.5, overhead[2])),
                "p95": _ms(estimate_quantile(0.95, overhead[2])),
            },
            "models": dict(sorted(models.items())),
            "upstream_attempts": self._nested("gateway_upstream_attempts_total", "deployment", "outcome"),
            "rate_limited": self._nested("gateway_rate_limited_total", "scope", "model"),
            "call_log": {
                key: int(s.value) for key in CALL_LOG_GAUGES for s in self._by_name[f"gateway_call_log_{key}"]
            },
        }

    def _histograms(self, name: str, label: str | None) -> dict[str, tuple[float, float, list[tuple[float, float]]]]:
        """(sum, count, cumulative buckets) per value of `label`, adding up the other label sets."""
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, float] = defaultdict(float)
        buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for s in self._by_name[f"{name}_sum"]:
            sums[s.labels.get(label, "") if label else ""] += s.value
        for s in self._by_name[f"{name}_count"]:
            counts[s.labels.get(label, "") if label else ""] += s.value
        for s in self._by_name[f"{name}_bucket"]:
            buckets[s.labels.get(label, "") if label else ""][float(s.labels["le"])] += s.value
        return {key: (sums[key], counts[key], sorted(buckets[key].items())) for key in counts}

    def _nested(self, name: str, outer: str, inner: str) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for s in self._by_name[name]:
            result[s.labels[outer]][s.labels[inner]] += int(s.value)
        return {key: dict(sorted(value.items())) for key, value in sorted(result.items())}


def _empty_model() -> dict[str, Any]:
    return {
        "requests": 0,
        "errors": 0,
        "avg_latency_ms": None,
        "p50_latency_ms": None,
        "p95_latency_ms": None,
        "p50_ttft_ms": None,
        "tokens": dict.fromkeys(TOKEN_TYPES, 0),
        "cost_usd": 0.0,
        "fallbacks": 0,
        "retries": 0,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)
