"""The alert rules and the dashboard read only series a running gateway exports: a renamed metric fails here,
not silently in an operator's Grafana."""

from __future__ import annotations

import re

import httpx
import yaml

from tests.conftest import GatewayFactory
from tests.integration.monitoring.dashboard import gateway_metrics, load, panel_queries
from tests.integration.monitoring.test_rules import RULES

MODELS = {"models": [{"id": "m", "route": [{"kind": "mock", "name": "d"}]}]}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def exported(text: str) -> set[str]:
    """Every series name the exposition declares (a labelled family with no samples yet still has its TYPE line)."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        names.update(name + suffix for suffix in SUFFIXES[kind])
    return names


def test_rules_and_dashboard_read_only_exported_metrics(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(MODELS)
    names = exported(httpx.get(f"{gateway.url}/metrics", timeout=10).text)
    assert "gateway_requests_total" in names and "gateway_ttft_seconds_bucket" in names
    rule_exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    used = {name for expr in rule_exprs for name in gateway_metrics(expr)}
    used |= {name for _, _, expr in panel_queries(load()) for name in gateway_metrics(expr)}
    assert used, "no gateway_* metric found in the rules or the dashboard"
    assert used - names == set()
    for needed in ("gateway_deployment_healthy", "gateway_call_log_queue_capacity", "gateway_spill_budget_used_ratio"):
        assert needed in used
