"""infrastructure/prometheus/: the rules load in promtool, and its unit tests pass with every alert shown firing
and not firing."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from gateway.settings import ROOT
from tests.support.tools import need_tool

PROMETHEUS_DIR = ROOT / "infrastructure" / "prometheus"
RULES = PROMETHEUS_DIR / "gateway-rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need_tool("promtool", "prometheus"), *args], capture_output=True, text=True, timeout=60)


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts >= {
        "GatewayCallLogRowsLost",
        "GatewayDeploymentDown",
        "GatewayCircuitOpen",
        "GatewayHighErrorRate",
        "GatewayTTFTHigh",
        "GatewaySpillBudgetExhausted",
        "GatewayCallLogQueueNearFull",
    }
    assert alerts - fired == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested quiet"


def test_promtool_catches_a_broken_rule(tmp_path: Any) -> None:
    """The check above would pass vacuously if promtool accepted anything."""
    broken = tmp_path / "broken.yml"
    broken.write_text("groups: [{name: g, rules: [{alert: A, expr: 'sum(rate(x[5m])'}]}]\n")
    assert promtool("check", "rules", str(broken)).returncode != 0
