"""ROUTER_RETRY_ON decides which failures go to another deployment, through a real gateway."""

from __future__ import annotations

import httpx

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def test_a_kind_left_out_of_retry_on_is_returned_without_trying_the_next(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)), ROUTER_RETRY_ON="connect,timeout,rate_limited")
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json=BODY, timeout=20)
    assert resp.status_code == 502, resp.text
    assert (a.count, b.count) == (1, 0)
    assert resp.headers["x-gateway-attempts"] == "1"


def test_by_default_a_server_error_falls_back(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)))
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json=BODY, timeout=20)
    assert resp.status_code == 200 and resp.headers["x-gateway-deployment"] == "b"
    assert (a.count, b.count) == (1, 1)
