"""Audit issue 15, item 1 through the whole gateway: an upstream that sends `103 Early Hints` before its answer.

Before the fix the gateway took the 103 for the answer, pooled its connection as clean, and the next call on that
connection, from anyone, was given the first call's answer.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import openai

from tests.conftest import GatewayFactory
from tests.support.gateway import ThreadGateway
from tests.support.hostile import chat_completion, early_hints, response

from .conftest import RawServer, ok

JSON = "Content-Type: application/json"


def logged(gw: ThreadGateway) -> list[dict[str, Any]]:
    conn = sqlite3.connect(gw.settings.env["SQLITE_DB_PATH"])
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("select * from api_logs order by id")]
    finally:
        conn.close()


def answer(request: bytes) -> list[bytes | float]:
    """Tenant one's call is answered after early hints and some thinking; any other call at once."""
    if not request.startswith(b"POST"):
        return ok(b"{}")  # a health probe, should one come
    if b"tenant-one" in request:
        return [early_hints("</docs.css>; rel=preload"), 0.3, response(chat_completion("answer-A"), JSON)]
    return [response(chat_completion("answer-B"), JSON)]


async def test_each_client_gets_its_own_answer_after_early_hints(serve, gateway_factory: GatewayFactory) -> None:
    """h11/httpx and aiohttp skip 1xx and wait for the final response; nginx before 1.29 took an upstream 103 for
    the final one (nuxt/framework#8306) and 1.29 relays it and waits; Envoy handles an upstream 100 apart from the
    final headers (proxy_100_continue) and waits for them."""
    upstream: RawServer = await serve(answer)
    deployment = {
        "kind": "openai", "name": "hinted", "base_url": upstream.url.split("/v1")[0] + "/v1",
        "api_key": "sk-test-hinted-secret", "provider_model_id": "upstream-model", "weight": 1, "health_path": "none",
    }  # fmt: skip
    model = {"id": "m", "pricing": {"prompt": "1", "completion": "2"}, "route": [deployment]}
    gw = gateway_factory({"models": [model]})
    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0, timeout=10)
    first = await client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "tenant-one asks"}]
    )
    second = await client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "tenant-two asks"}]
    )
    await client.close()
    assert first.parse().choices[0].message.content == "answer-A"
    assert second.parse().choices[0].message.content == "answer-B"

    rows = {row["request_id"]: row for row in logged(gw)}
    one, two = rows[first.headers["x-request-id"]], rows[second.headers["x-request-id"]]
    assert (one["response"], one["status_code"], one["deployment"]) == ("answer-A", 200, "hinted")
    assert (two["response"], two["status_code"], two["deployment"]) == ("answer-B", 200, "hinted")
    assert "tenant-one" in one["prompt"] and "tenant-two" in two["prompt"]
    for row in (one, two):
        assert [x["outcome"] for x in json.loads(row["attempts"])] == ["ok"]
    assert len(upstream.requests) == 2 and upstream.connections == 1  # one exchange each, the connection reused
