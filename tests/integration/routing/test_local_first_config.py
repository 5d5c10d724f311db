"""`local_first` in the config: check-config explains it; a bad value stops with file, field and fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import ROOT
from tests.support.gateway import write_config

MODELS = {
    "models": [
        {
            "id": "m",
            "route": [
                {"kind": "vllm", "name": "gpu-a", "base_url": "http://gpu-a:8000/v1"},
                {"kind": "vllm", "name": "gpu-b", "base_url": "http://gpu-b:8000/v1", "metrics_url": "none"},
                {"kind": "openai", "name": "cloud", "base_url": "http://cloud/v1", "api_key": "sk-secret"},
            ],
        }
    ]
}


def routing(**local_first: Any) -> dict[str, Any]:
    return {
        "routing_strategy": "local_first",
        "local_first": local_first,
        "local_deployment": [
            {"endpoint": "http://gpu-a:8000", "models": ["m"]},
            {"endpoint": "http://gpu-b:8000", "models": ["m"]},
        ],
        "remote_deployment": [{"endpoint": "http://cloud", "models": ["m"]}],
    }


def check_config(tmp_path: Path, routing_file: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = write_config(tmp_path, MODELS, routing_file)
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=30,
    )


def test_check_config_explains_local_first(tmp_path: Path) -> None:
    result = check_config(tmp_path, routing(max_waiting=6, spill_budget_usd_per_hour=10))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "m  [local_first]" in out
    assert "queue <= 6, KV cache <= 90%" in out and "under 50% of both limits" in out
    assert "spill budget: 10 USD/hour" in out
    assert "load of gpu-a: vllm metrics at http://gpu-a:8000/metrics, every 1s" in out
    assert "load of gpu-b: no metrics_url: in-flight count only" in out
    assert "sk-secret" not in out


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_kv_usage": 1.5}, "local_first.max_kv_usage: must be between 0.0 and 1.0, got 1.5"),
        ({"max_wating": 3}, "local_first.max_wating: unknown field; did you mean `max_waiting`?"),
        ({"scrape_interval": 1, "scrape_timeout": 2}, "local_first.scrape_timeout: must not exceed scrape_interval"),
    ],
)
def test_a_bad_local_first_value_names_file_field_and_fix(tmp_path: Path, values: dict[str, Any], message: str) -> None:
    result = check_config(tmp_path, routing(**values))
    assert result.returncode == 1
    assert message in result.stderr and "routing.yaml" in result.stderr and "Fix:" in result.stderr
