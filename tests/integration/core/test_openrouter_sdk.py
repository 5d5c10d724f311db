"""OpenRouter's own SDK (`openrouter`, unmodified) against a running gateway's `/api/v1`: chat, streams, the model
list, and every error as the SDK's typed error (not ResponseValidationError), while `/v1` keeps OpenAI's shapes."""

from __future__ import annotations

import httpx
import pytest
from openrouter import OpenRouter, errors
from openrouter.utils import BackoffStrategy, RetryConfig

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Say hello, please."}]
KEY = "sk-client-0123456789"
# The SDK retries every 5xx with backoff for up to an hour by default, and reads no x-should-retry.
NO_RETRIES = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)


def sdk(url: str, key: str = KEY) -> OpenRouter:
    return OpenRouter(api_key=key, server_url=f"{url}/api/v1", retry_config=NO_RETRIES, timeout_ms=20_000)


def openrouter_shaped(response: httpx.Response, status: int, gateway_code: str) -> None:
    error = response.json()["error"]
    assert response.status_code == status and error["code"] == status and error["message"]
    assert error["metadata"]["gateway_code"] == gateway_code


def test_chat_non_streamed_and_streamed(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    client = sdk(gateway_factory(models(route(a))).url)
    result = client.chat.send(model="m-alias", messages=MESSAGES)
    text = result.choices[0].message.content
    assert result.model == "m" and isinstance(text, str) and text.startswith("[a]")
    assert result.usage is not None and result.usage.total_tokens > 0 and result.usage.cost
    with client.chat.send(model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}) as events:
        chunks = list(events)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert len({c.id for c in chunks}) == 1 and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens


def test_models_list_parses_and_pages(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    config = models(route(a))
    config["models"].append({"id": "n", "route": [route(b)]})
    gw = gateway_factory(config)
    listed = sdk(gw.url).models.list()
    assert listed.result.total_count == 2 and listed.result.links.next is None
    first = listed.result.data[0]
    assert [m.id for m in listed.result.data] == ["m", "n"] and first.pricing.prompt == "0.000001"
    assert first.default_parameters is None and first.supported_voices is None
    assert first.links.details == "/api/v1/models/m/endpoints" and first.top_provider.is_moderated is False
    paged = sdk(gw.url).models.list(limit=1)
    assert [m.id for m in paged.result.data] == ["m"] and paged.result.links.next == "/api/v1/models?offset=1&limit=1"
    following = paged.next()
    assert following is not None and [m.id for m in following.result.data] == ["n"]
    openai_list = httpx.get(f"{gw.url}/v1/models").json()  # /v1 keeps OpenAI's list as it was
    assert set(openai_list) == {"object", "data"} and "links" not in openai_list["data"][0]
    bad = httpx.get(f"{gw.url}/api/v1/models", params={"limit": "0"})
    openrouter_shaped(bad, 400, "invalid_value")


def test_request_errors_are_typed(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)), MAX_BODY_BYTES="2000")
    client = sdk(gw.url)
    with pytest.raises(errors.BadRequestResponseError) as bad:
        client.chat.send(model="m", messages=MESSAGES, temperature=5)
    assert bad.value.status_code == 400 and bad.value.data.error.code == 400
    assert bad.value.data.error.metadata == {
        "error_type": "invalid_request",
        "gateway_code": "invalid_value",
        "param": "temperature",
    }
    with pytest.raises(errors.NotFoundResponseError) as missing:
        client.chat.send(model="no-such-model", messages=MESSAGES)
    assert (
        missing.value.data.error.code == 404 and missing.value.data.error.metadata["gateway_code"] == "model_not_found"
    )
    with pytest.raises(errors.PayloadTooLargeResponseError) as big:
        client.chat.send(model="m", messages=[{"role": "user", "content": "x" * 5000}])
    assert big.value.data.error.code == 413
    assert a.count == 0
    not_json = httpx.post(
        f"{gw.url}/api/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    openrouter_shaped(not_json, 400, "invalid_json")
    openrouter_shaped(httpx.get(f"{gw.url}/api/v1/no-such-route"), 404, "not_found")
    wrong_method = httpx.post(f"{gw.url}/api/v1/models", json={})
    openrouter_shaped(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "GET, HEAD"
    assert httpx.get(f"{gw.url}/api/v1/models/").headers["location"].endswith("/api/v1/models")
    assert httpx.get(f"{gw.url}/v1/no-such-route").json()["error"]["code"] == "not_found"  # /v1: OpenAI's


def test_refusals_are_typed(gateway_factory: GatewayFactory) -> None:
    mock = {"models": [{"id": "mock", "route": [{"kind": "mock"}]}]}
    gw = gateway_factory(mock, GATEWAY_API_KEYS=f"alice:{KEY}", ADMIN_API_KEY="sk-admin-9876543210")
    with pytest.raises(errors.UnauthorizedResponseError) as chat:
        sdk(gw.url, "sk-wrong").chat.send(model="mock", messages=MESSAGES)
    assert chat.value.status_code == 401 and chat.value.data.error.code == 401
    assert chat.value.headers["x-should-retry"] == "false"
    with pytest.raises(errors.OpenRouterDefaultError) as listing:  # the SDK's spec of models.list has no 401 entry
        sdk(gw.url, "sk-wrong").models.list()
    assert listing.value.status_code == 401 and "invalid_api_key" in listing.value.body
    assert sdk(gw.url).chat.send(model="mock", messages=MESSAGES).choices
    client = {"Authorization": f"Bearer {KEY}"}
    openrouter_shaped(httpx.get(f"{gw.url}/api/v1/generation?id=x", headers=client), 403, "invalid_admin_key")
    openrouter_shaped(httpx.get(f"{gw.url}/api/v1/no-such-route"), 401, "missing_api_key")
    assert set(httpx.get(f"{gw.url}/v1/models").json()["error"]) == {"message", "type", "param", "code"}


def test_rate_limit_is_typed_and_worth_a_retry(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(models({"kind": "mock", "name": "x"}, rpm=1))
    client = sdk(gw.url)
    client.chat.send(model="m", messages=MESSAGES)
    with pytest.raises(errors.TooManyRequestsResponseError) as limited:
        client.chat.send(model="m", messages=MESSAGES)
    assert (
        limited.value.data.error.code == 429
        and limited.value.data.error.metadata["error_type"] == "rate_limit_exceeded"
    )
    assert limited.value.headers["x-should-retry"] == "true" and int(limited.value.headers["retry-after"]) >= 1


def test_upstream_failures_are_typed(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = {"status": 500}
    # a threshold the two calls cannot reach: an open circuit would (rightly) make the second one a 503
    client = sdk(gateway_factory(models(route(a)), CIRCUIT_FAILURE_THRESHOLD="100").url)
    with pytest.raises(errors.BadGatewayResponseError) as whole:
        client.chat.send(model="m", messages=MESSAGES)
    with pytest.raises(errors.BadGatewayResponseError) as streamed:  # failed before the stream committed
        client.chat.send(model="m", messages=MESSAGES, stream=True)
    for failure in (whole.value, streamed.value):
        assert failure.status_code == 502 and failure.data.error.code == 502
        assert failure.data.error.metadata["gateway_code"] == "upstream_error"
    assert whole.value.headers["x-should-retry"] == "false"
    assert "sk-test" not in whole.value.body


def test_mid_stream_error_chunk_parses(gateway_factory: GatewayFactory) -> None:
    with FakeUpstream.in_thread("a", {"cut_after": 2}) as a:
        client = sdk(gateway_factory(models(route(a))).url)
        with client.chat.send(model="m", messages=MESSAGES, stream=True) as events:
            chunks = list(events)
    last = chunks[-1]
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "[a] The"
    assert last.choices[0].finish_reason == "error" and last.error is not None
    assert last.error.code == 502 and last.error.metadata is not None and last.error.metadata.error_type == "server"
