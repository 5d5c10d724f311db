"""`x-should-retry` tells the openai and anthropic SDKs whether a retry can help: one call against a failing upstream
makes the gateway's own attempts and no more, while a rate limit stays worth retrying."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route

MESSAGES = [{"role": "user", "content": "Say hello, please."}]


@pytest.mark.parametrize("surface", ["/v1", "/api/v1"])
def test_the_sdk_does_not_retry_what_the_gateway_already_retried(
    gateway_factory: GatewayFactory, upstreams, surface: str
) -> None:
    a, _ = upstreams
    a.behaviour = {"status": 500}
    gw = gateway_factory(models(route(a)))
    client = openai.OpenAI(base_url=gw.url + surface, api_key="client-key", timeout=20)
    assert client.max_retries == 2  # the SDK's default
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    headers = info.value.response.headers
    assert a.count == int(headers["x-gateway-attempts"]) == 3  # ROUTER_MAX_ATTEMPTS, one call's worth
    assert info.value.status_code == 502 and headers["x-should-retry"] == "false"


def test_each_error_says_whether_a_retry_helps(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    config = models(route(a))
    config["models"].append({"id": "limited", "rpm": 1, "route": [{"kind": "mock"}]})
    gw = gateway_factory(config)
    chat = f"{gw.url}/v1/chat/completions"
    assert httpx.post(chat, json={"model": "limited", "messages": MESSAGES}).status_code == 200
    limited = httpx.post(chat, json={"model": "limited", "messages": MESSAGES})
    assert limited.status_code == 429 and limited.headers["x-should-retry"] == "true" and limited.headers["retry-after"]
    unknown = httpx.post(chat, json={"model": "nope", "messages": MESSAGES})
    assert unknown.status_code == 404 and unknown.headers["x-should-retry"] == "false"
    invalid = httpx.post(chat, json={"model": "m", "messages": []})
    assert invalid.status_code == 400 and invalid.headers["x-should-retry"] == "false"
    assert httpx.get(f"{gw.url}/nope").headers["x-should-retry"] == "false"
    assert "x-should-retry" not in httpx.post(chat, json={"model": "m", "messages": MESSAGES}).headers
