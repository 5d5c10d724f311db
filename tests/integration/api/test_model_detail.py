"""`GET /v1/models/{id}` with the OpenAI SDK: one model in the list's shape, aliases resolved, ids with `/`,
OpenAI's 404 otherwise; `/api/v1/models/{id}` in OpenRouter's shapes."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.api.conftest import Client
from tests.integration.core.conftest import models, route


def test_retrieve_by_id_and_alias_matches_the_list(gateway_factory: GatewayFactory, upstreams, client: Client) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a), model_id="org/m"))
    c = client(gw.url)
    listed = httpx.get(f"{gw.url}/v1/models").json()["data"][0]
    model = c.models.retrieve("org/m")
    assert model.id == "org/m" and model.object == "model" and model.owned_by == listed["owned_by"]
    raw = c.models.with_raw_response.retrieve("org/m")
    assert raw.http_request.url.raw_path.endswith(b"/models/org%2Fm")  # the SDK percent-encodes the `/`
    assert raw.http_response.json() == listed
    assert c.models.retrieve("org/m-alias").id == "org/m"
    with pytest.raises(openai.NotFoundError) as caught:
        c.models.retrieve("org/nope")
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    assert "org/nope" in error["message"] and caught.value.response.headers["x-should-retry"] == "false"


def test_openrouter_surface_retrieves_in_its_shapes(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a), model_id="org/m"))
    one = httpx.get(f"{gw.url}/api/v1/models/org/m").json()
    assert one == httpx.get(f"{gw.url}/api/v1/models").json()["data"][0]
    missing = httpx.get(f"{gw.url}/api/v1/models/org/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    assert missing.json()["error"]["metadata"]["gateway_code"] == "model_not_found"


def test_a_trailing_slash_is_still_the_list(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    for prefix in ("/v1", "/api/v1"):
        moved = httpx.get(f"{gw.url}{prefix}/models/")
        assert moved.status_code in (307, 308) and moved.headers["location"].endswith(f"{prefix}/models")
