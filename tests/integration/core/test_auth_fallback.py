"""A deployment whose key the upstream refuses (401, 403) is a broken deployment: the call falls back."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.gateway import ThreadGateway

MESSAGES = [{"role": "user", "content": "Who answers?"}]


def row(gw: ThreadGateway, request_id: str) -> dict[str, Any]:
    conn = sqlite3.connect(gw.settings.env["SQLITE_DB_PATH"])
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("select * from api_logs where request_id = ?", (request_id,))]
    finally:
        conn.close()
    assert len(rows) == 1, f"expected one row for {request_id}, got {len(rows)}"
    return rows[0]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_falls_back_to_the_next_deployment(
    gateway_factory: GatewayFactory, upstreams, status: int, stream: bool
) -> None:
    a, b = upstreams
    a.behaviour = {"status": status}
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)))
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0, timeout=10)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=stream)
    assert raw.headers["x-gateway-deployment"] == "b"
    assert raw.headers["x-gateway-attempts"] == "2"
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        text = raw.parse().choices[0].message.content or ""
    assert text.startswith("[b]")
    assert (a.count, b.count) == (1, 1)  # a refused key is not retried on the same deployment
    assert a.requests[-1].headers["authorization"] == "Bearer sk-test-a-secret"

    logged = row(gw, raw.headers["x-request-id"])
    assert logged["deployment"] == "b" and logged["status_code"] == 200 and logged["fallback_used"]
    attempts = json.loads(logged["attempts"])
    assert [(x["deployment"], x["outcome"], x["status_code"]) for x in attempts] == [
        ("a", "error", status),
        ("b", "ok", 200),
    ]
    assert "sk-test-a-secret" not in logged["attempts"]


def test_streamed_fallback_counts_both_attempts_in_its_header(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"status": 401}
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)))
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0, timeout=10)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True)
    list(raw.parse())
    assert raw.headers["x-gateway-deployment"] == "b"
    assert raw.headers["x-gateway-attempts"] == "2"
    direct = gateway_factory(models(route(b, 1.0)))  # a first-try success counts its one attempt
    one = openai.OpenAI(base_url=f"{direct.url}/v1", api_key="k", max_retries=0, timeout=10)
    first_try = one.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True)
    list(first_try.parse())
    assert (first_try.headers["x-gateway-deployment"], first_try.headers["x-gateway-attempts"]) == ("b", "1")
