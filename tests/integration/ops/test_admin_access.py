"""Admin writes through real sockets: POST /routing needs the admin key, and a keyless gateway trusts only
direct calls from this host, never calls a local reverse proxy (cloudflared, nginx) forwarded."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.access import Access, AccessPolicy
from tests.conftest import GatewayFactory
from tests.support.gateway import ProcessGateway, base_env, write_config

MOCK = {"models": [{"id": "mock", "route": [{"kind": "mock", "mock": {"completion_tokens": 5}}]}]}
CLIENT_KEY = "sk-alice-0123456789secret"
ADMIN_KEY = "sk-admin-9876543210secret"
RELOAD = {"reload": True}
PROXY_HEADERS = [
    {"X-Forwarded-For": "203.0.113.9"},
    {"X-Real-IP": "203.0.113.9"},
    {"Forwarded": "for=203.0.113.9;proto=https"},
    {"CF-Connecting-IP": "203.0.113.9"},
]


def assert_openai_error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_post_routing_needs_the_admin_key(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, GATEWAY_API_KEYS=f"alice:{CLIENT_KEY}", ADMIN_API_KEY=ADMIN_KEY)
    url = f"{gw.url}/routing"
    assert_openai_error(httpx.post(url, json=RELOAD), 401)  # from loopback too, once a key is set
    assert_openai_error(httpx.post(url, json=RELOAD, headers={"Authorization": f"Bearer {CLIENT_KEY}"}), 403)
    assert_openai_error(httpx.post(url, json=RELOAD, headers={"Authorization": "Bearer sk-nope"}), 403)
    ok = httpx.post(url, json=RELOAD, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert ok.status_code == 200, ok.text
    assert "mock" in ok.json()["models"]


@pytest.mark.parametrize("proxy", PROXY_HEADERS, ids=lambda h: next(iter(h)))
def test_keyless_admin_refuses_calls_forwarded_by_a_local_proxy(
    gateway_factory: GatewayFactory, proxy: dict[str, str]
) -> None:
    gw = gateway_factory(MOCK)
    url = f"{gw.url}/routing"
    forwarded = httpx.post(url, json=RELOAD, headers=proxy)
    assert_openai_error(forwarded, 403)
    assert forwarded.json()["error"]["code"] == "admin_disabled"
    assert_openai_error(httpx.get(url, headers=proxy), 403)
    direct = httpx.post(url, json=RELOAD)
    assert direct.status_code == 200, direct.text
    assert httpx.get(url).status_code == 200


def test_served_gateway_refuses_a_forwarded_call(tmp_path: Path) -> None:
    # `gateway serve` without FORWARDED_ALLOW_IPS leaves the socket's address in place (the test servers above let
    # uvicorn rewrite it from X-Forwarded-For), so only the header check stands between the proxy and /routing.
    with ProcessGateway({**base_env(tmp_path), **write_config(tmp_path, MOCK)}) as gw:
        forwarded = httpx.post(f"{gw.url}/routing", json=RELOAD, headers={"X-Forwarded-For": "203.0.113.9"})
        assert_openai_error(forwarded, 403)
        assert httpx.post(f"{gw.url}/routing", json=RELOAD).status_code == 200


def test_local_means_loopback_and_no_proxy_header() -> None:
    policy = AccessPolicy()
    assert policy.decide(Access.ADMIN, "", "127.0.0.1", [(b"accept", b"*/*")]).allowed
    assert policy.decide(Access.ADMIN, "", "::1").allowed
    for name in (b"x-forwarded-for", b"X-Real-IP", b"forwarded", b"cf-connecting-ip"):
        decision = policy.decide(Access.ADMIN, "", "127.0.0.1", [(name, b"203.0.113.9")])
        assert (decision.allowed, decision.status) == (False, 403), name
    assert policy.decide(Access.ADMIN, "", "203.0.113.9").status == 403
    # client routes of an open gateway do not care about proxies
    assert policy.decide(Access.CLIENT, "", "127.0.0.1", [(b"x-forwarded-for", b"203.0.113.9")]).allowed
