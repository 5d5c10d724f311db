"""infrastructure/grafana/gateway.json: a provisioning-ready dashboard whose every query promtool parses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.integration.monitoring.dashboard import load, panel_queries, substitute
from tests.support.tools import need_tool

REQUIRED_PANELS = {
    "Request rate",
    "Error rate (5xx share)",
    "Time to first token p50 / p95",
    "Latency p50 / p95",
    "Tokens per second",
    "Cost per hour",
    "Deployment up",
    "Circuit breakers",
    "Spill budget used",
    "Call-log queue",
    "Call-log rows lost",
}


def test_dashboard_is_provisioning_ready_with_a_datasource_variable() -> None:
    dashboard = load()
    assert dashboard["id"] is None and dashboard["uid"] == "hybrid-gateway"  # provisioning keys it by uid
    assert "__inputs" not in dashboard  # an export for the import dialog, not for provisioning
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    ref = {"type": "prometheus", "uid": "${datasource}"}
    for panel in dashboard["panels"]:
        assert panel["datasource"] == ref, panel["title"]
        assert all(t["datasource"] == ref for t in panel["targets"]), panel["title"]
    for name in ("job", "model"):
        assert variables[name]["datasource"] == ref
    assert REQUIRED_PANELS <= {p["title"] for p in dashboard["panels"]}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_no_panel_overlaps_another() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in load()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_substitution_leaves_no_variable() -> None:
    assert substitute('rate(x{job=~"$job"}[$__rate_interval])') == 'rate(x{job=~".*"}[1m])'
    assert substitute("rate(x[${__rate_interval}])") == "rate(x[1m])"
    for title, _, expr in panel_queries(load()):
        assert "$" not in expr, title


def test_promtool_parses_every_panel_query(tmp_path: Path) -> None:
    promtool = need_tool("promtool", "prometheus")
    queries = panel_queries(load())
    assert len(queries) >= len(REQUIRED_PANELS)
    rules = [{"record": f"dashboard:panel_{i}:{ref}", "expr": expr} for i, (_, ref, expr) in enumerate(queries)]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
    # the same path with one broken query must fail, or the check above proves nothing
    rules[0]["expr"] = queries[0][2].replace("[1m]", "[1m")
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode != 0
