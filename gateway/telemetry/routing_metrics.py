"""Prometheus metrics of load-aware routing: scraped engine load, spill, affinity, the spill budget.

Labels are config names (model ids, deployment names) and fixed words (signals, reasons, results), so
cardinality stays bounded. Each worker scrapes and decides on its own: the load gauges show the highest value
any live worker saw, the budget the highest share any worker has used.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from routing.config.schema import DeploymentConfig
from routing.load import ScrapeState

_SIGNALS = ("running", "waiting", "kv_usage")


class RoutingMetrics:
    """The load-routing metrics, registered on the gateway's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.spill = Counter(
            "gateway_spill_total",
            "Calls served by a remote deployment because local ones were full",
            ["model", "reason"],
            registry=r,
        )
        self.spill_cost = Counter(
            "gateway_spill_cost_usd_total",
            "Cost in US dollars of calls that spilled to remote deployments",
            ["model"],
            registry=r,
        )
        self.load = Gauge(
            "gateway_deployment_load",
            "Scraped engine load per deployment: running, waiting, kv_usage (0-1), scrape_ok (1/0)",
            ["deployment", "signal"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.affinity = Counter(
            "gateway_affinity_total", "Affinity decisions: hit, overflow (first choice full)", ["result"], registry=r
        )
        self.budget_used = Gauge(
            "gateway_spill_budget_used_ratio",
            "Spill cost over the last hour as a share of spill_budget_usd_per_hour",
            [],
            multiprocess_mode="livemax",
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        self._budget: float | None = None

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def scraped(self, dep: DeploymentConfig, state: ScrapeState) -> None:
        """Publish one scrape's figures (the last good ones stay, with scrape_ok 0, when it failed)."""
        self._child(self.load, dep.name, "scrape_ok").set(0 if state.error else 1)
        sample = state.sample
        if sample is None or state.error:
            return
        for signal in _SIGNALS:
            value = getattr(sample, "kv_usage" if signal == "kv_usage" else signal)
            if value is not None:
                self._child(self.load, dep.name, signal).set(value)

    def spilled(self, model: str, reason: str, cost: float) -> None:
        self._child(self.spill, model, reason).inc()
        if cost > 0:
            self._child(self.spill_cost, model).inc(cost)

    def affinity_decided(self, result: str) -> None:
        self._child(self.affinity, result).inc()

    def budget(self, ratio: float) -> None:
        # published every second by each worker: skip unchanged values (each set is a file write in multiprocess)
        if ratio != self._budget:
            self.budget_used.set(ratio)
            self._budget = ratio
