"""METRICS_ENABLED=false (the benchmark's "metrics off" row): calls are served and not counted; /metrics answers."""

from __future__ import annotations

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory

MOCK = {"models": [{"id": "mock", "route": [{"kind": "mock", "name": "m1", "mock": {"completion_tokens": 2}}]}]}


def counted_after_two_calls(url: str) -> float:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    try:
        for i in range(2):
            reply = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": f"q{i}"}])
            assert reply.choices[0].message.content
    finally:
        client.close()
    resp = httpx.get(f"{url}/metrics")
    assert resp.status_code == 200
    families = text_string_to_metric_families(resp.text)
    return sum(s.value for fam in families for s in fam.samples if s.name == "gateway_requests_total")


def test_metrics_count_calls_by_default(gateway_factory: GatewayFactory) -> None:
    assert counted_after_two_calls(gateway_factory(MOCK).url) == 2


def test_metrics_disabled_serves_calls_without_counting_them(gateway_factory: GatewayFactory) -> None:
    assert counted_after_two_calls(gateway_factory(MOCK, METRICS_ENABLED="false").url) == 0
