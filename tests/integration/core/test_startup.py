"""Real gateway processes: a bad config stops start-up with file, field and fix; check-config prints the table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.settings import ROOT
from tests.support.gateway import ProcessGateway, base_env, write_config


def test_bad_config_stops_startup_with_a_clear_message(tmp_path: Path) -> None:
    env = {
        **base_env(tmp_path),
        **write_config(
            tmp_path,
            {
                "models": [
                    {
                        "id": "m",
                        "route": [
                            {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k", "weight": -2}
                        ],
                    }
                ]
            },
        ),
    }
    gateway = ProcessGateway(env)
    with pytest.raises(RuntimeError) as info:
        gateway.start(timeout=20)
    output = str(info.value)
    assert "models.yaml: models[0].route[0].weight: must be >= 0" in output
    assert "Fix:" in output
    assert "Traceback" not in output.split("configuration error")[-1].split("\n")[0]


def test_gateway_serves_the_shipped_config_with_no_keys(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "CALL_LOG_SYNC": "false"}
    with ProcessGateway(env) as gateway:
        ids = [m["id"] for m in httpx.get(f"{gateway.url}/v1/models").json()["data"]]
        assert "mock-gpt" in ids
        reply = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert reply.status_code == 200 and reply.json()["model"] == "mock-gpt"
        assert httpx.get(f"{gateway.url}/health").json()["status"] == "degraded"


def test_check_config_prints_the_routing_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LOCAL_BASE_URL": "http://gpu:8000/v1", "LLAMA_API_KEY": "secret-llama-key"},
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "llama-3.3-70b-instruct  [fixed]" in result.stdout
    assert "60.0%" in result.stdout and "40.0%" in result.stdout
    assert "secret-llama-key" not in result.stdout + result.stderr
    bad = write_config(tmp_path, "models:\n  - id: x\n    route:\n      - kind: warp\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **bad},
        timeout=30,
    )
    assert result.returncode == 1
    assert "models[0].route[0].kind: unknown kind 'warp'" in result.stderr and "Fix: use one of" in result.stderr
