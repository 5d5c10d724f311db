"""A real Prometheus server scrapes a real two-worker gateway: its HTTP API then reports exactly the traffic sent,
the rules load, and promtool accepts the live exposition."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.integration.monitoring.test_rules import RULES
from tests.integration.ops.test_metrics_workers import MODELS, wait_for_workers
from tests.support.gateway import ProcessGateway, base_env, write_config
from tests.support.prometheus import PrometheusServer
from tests.support.tools import need_tool


def value(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if result else None


def test_prometheus_counts_every_call_to_two_workers(tmp_path: Path) -> None:
    prometheus = need_tool("prometheus", "prometheus")
    promtool = need_tool("promtool", "prometheus")
    prom_dir = tmp_path / "multiproc"
    env = {
        **base_env(tmp_path),
        **write_config(tmp_path, MODELS),
        "CALL_LOG_SYNC": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
        "LOG_LEVEL": "INFO",
    }
    n_plain, n_stream = 30, 10
    with ProcessGateway(env, workers=2) as gw:
        wait_for_workers(prom_dir, 2)
        target = f"127.0.0.1:{gw.port}"
        with PrometheusServer(prometheus, tmp_path / "prometheus", [target], rule_files=[RULES]) as server:
            up = server.wait_for('up{job="gateway"}', lambda r: value(r) == 1.0)
            assert value(up) == 1.0, server.log_path.read_text()
            # Connection: close on every call, so the kernel hands them to both workers, not one kept-alive socket
            with openai.OpenAI(
                base_url=f"{gw.url}/v1", api_key="unused", default_headers={"Connection": "close"}
            ) as client:
                for i in range(n_plain):
                    reply = client.chat.completions.create(
                        model="mock", messages=[{"role": "user", "content": f"q{i}"}]
                    )
                    assert reply.choices[0].message.content
                for i in range(n_stream):
                    chunks = client.chat.completions.create(
                        model="mock", messages=[{"role": "user", "content": f"s{i}"}], stream=True
                    )
                    assert [c for c in chunks if c.choices and c.choices[0].delta.content]
            n = n_plain + n_stream
            total = server.wait_for("sum(gateway_requests_total)", lambda r: value(r) == n)
            assert value(total) == n, f"Prometheus saw {value(total)} calls of {n}"
            by_status = server.query("sum by (model, status) (gateway_requests_total)")
            assert [(s["metric"], float(s["value"][1])) for s in by_status] == [({"model": "mock", "status": "200"}, n)]
            streamed = server.wait_for(
                'sum(gateway_request_duration_seconds_count{stream="true"})', lambda r: value(r) == n_stream
            )
            assert value(streamed) == n_stream
            ttft = server.query("sum(gateway_ttft_seconds_count)")
            assert value(ttft) == n  # a whole answer's first token counts too
            capacity = server.query('gateway_call_log_queue_capacity{job="gateway"}')
            assert value(capacity) == 2 * 10_000  # both workers' queues, one series
            groups = {g["name"]: g for g in server.api("rules")["groups"]}
            assert set(groups) == {"gateway-recording", "gateway-alerts"}
            assert len(groups["gateway-alerts"]["rules"]) == 7
            firing = server.query('ALERTS{alertstate="firing"}')
            assert firing == [], firing  # a healthy gateway raises nothing
        exposition = httpx.get(f"{gw.url}/metrics", timeout=10).text
    lint = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stdout + lint.stderr == "", lint.stdout + lint.stderr
    pids = {json.loads(line)["pid"] for line in gw.read_output().splitlines() if '"msg":"call"' in line}
    assert len(pids) == 2, "one worker took every call: the test would not prove the workers' counts add up"
