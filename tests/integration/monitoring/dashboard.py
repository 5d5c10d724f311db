"""Reading infrastructure/grafana/gateway.json: its panels' PromQL with the dashboard variables filled in."""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.settings import ROOT

DASHBOARD = ROOT / "infrastructure" / "grafana" / "gateway.json"

# What Grafana puts in place of its variables; any value of the right kind makes the query parse the same way.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "$model": ".*",
}
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def substitute(expr: str) -> str:
    """The expression as Grafana sends it; longest names first, so `$__rate_interval` is not read as `$__r...`."""
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace("${" + name[1:] + "}", VARIABLES[name]).replace(name, VARIABLES[name])
    return expr


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, expression with variables substituted) for every target of every panel."""
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["refId"], substitute(target["expr"])))
    return queries


def gateway_metrics(expr: str) -> set[str]:
    """The gateway_* series names an expression reads (recording-rule names have colons and are left out)."""
    return {name for name in METRIC_NAME.findall(expr) if name.startswith("gateway_")}
