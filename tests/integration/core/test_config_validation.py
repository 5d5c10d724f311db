"""A misspelt key in a config file is refused with file, path and the nearest key: by `gateway check-config` and
by a reload of a running gateway, which keeps serving the config it had."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import openai
import yaml

from gateway.settings import ROOT
from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.gateway import write_config

TYPO = "models.yaml: models[0].route[1].wieght: unknown field; did you mean `weight`?. Fix: rename it to `weight`"


def check_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=30,
    )


def test_check_config_names_the_misspelt_key(tmp_path: Path) -> None:
    text = "models:\n  - id: m\n    route:\n      - {kind: mock, name: a}\n      - {kind: mock, name: b, wieght: 5}\n"
    result = check_config(write_config(tmp_path / "models", text))
    assert result.returncode == 1, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("config error: ")]
    assert len(lines) == 1, result.stderr
    assert str(tmp_path / "models" / TYPO.split(": ", 1)[0]) in lines[0] and TYPO.split(": ", 1)[1] in lines[0]

    good = "models:\n  - id: m\n    route:\n      - {kind: mock}\n"
    result = check_config(write_config(tmp_path / "routing", good, "routing_parameter:\n  local_fractoin: 0.2\n"))
    assert result.returncode == 1, result.stdout
    assert "routing.yaml: routing_parameter.local_fractoin: unknown field; did you mean `local_fraction`?" in (
        result.stderr
    )


def test_reload_with_a_misspelt_key_is_refused_and_the_old_config_keeps_serving(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, b = upstreams
    gw = gateway_factory(models(route(a)))
    bad = models(route(a, weight=0), {**route(b), "wieght": 5})
    gw.settings.models_path.write_text(yaml.safe_dump(bad, sort_keys=False))

    reply = httpx.post(f"{gw.url}/routing", json={"reload": True}, timeout=10)
    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]["message"]
    assert message.startswith("reload refused, the running config is unchanged: ")
    assert TYPO in message and str(gw.settings.models_path) in message

    rows = httpx.get(f"{gw.url}/routing", timeout=10).json()["models"]["m"]["deployments"]
    assert [(row["deployment"], row["weight"]) for row in rows] == [("a", 1.0)]
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="client-key", max_retries=0, timeout=20)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-gateway-deployment"] == "a"
    assert (a.count, b.count) == (1, 0)
