"""The audit's findings at the edge (issue 15 items 4, 5, 10, 11), through real sockets."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.served import isolated_env
from tests.support.upstream import FakeUpstream

MOCK = {"models": [{"id": "m", "max_output_length": 100, "route": [{"kind": "mock"}]}]}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_keyless_admin_is_refused_when_the_gateway_listens_beyond_loopback(serve: Any, tmp_path: Any) -> None:
    """nginx's default proxy_pass, socat, `ssh -L` and `kubectl port-forward` add no X-Forwarded-For: behind them
    every caller is a loopback caller without proxy headers. Envoy's admin interface and Prometheus' own admin
    API follow the same rule: an unauthenticated admin listener is bound to 127.0.0.1, never to 0.0.0.0."""
    wide = serve([sys.executable, "-m", "gateway", "serve", "--host", "0.0.0.0"], isolated_env(tmp_path / "a"))
    refused = httpx.post(f"{wide.url}/routing", json={"local_fraction": 0.1})  # a direct loopback call
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_disabled"
    assert "ADMIN_API_KEY" in refused.json()["error"]["message"]
    assert httpx.get(f"{wide.url}/stats").status_code == 403 and httpx.get(f"{wide.url}/metrics").status_code == 403
    assert httpx.get(f"{wide.url}/health").status_code == 200
    wide.terminate()
    assert "admin routes (/routing, /stats, /metrics...) are refused" in wide.stderr
    env = isolated_env(tmp_path / "b", ADMIN_API_KEY="sk-admin-123456")
    keyed = serve([sys.executable, "-m", "gateway", "serve", "--host", "0.0.0.0"], env)
    ok = httpx.get(f"{keyed.url}/routing", headers={"Authorization": "Bearer sk-admin-123456"})
    assert ok.status_code == 200
    keyed.terminate()
    local = serve([sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1"], isolated_env(tmp_path / "c"))
    assert httpx.get(f"{local.url}/routing").status_code == 200  # listening on loopback alone: the operator
    local.terminate()


def test_a_foreign_host_name_is_refused(gateway_factory: GatewayFactory) -> None:
    """DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own name in Host. Django's
    ALLOWED_HOSTS and ASP.NET's host filtering answer 400; Envoy routes by virtual host and answers 404."""
    gw = gateway_factory(MOCK)
    evil = httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers={"Host": "rebind.evil.example:80"})
    assert evil.status_code == 400 and evil.json()["error"]["code"] == "host_not_allowed"
    with pytest.raises(InvalidStatus):
        connect(f"ws://127.0.0.1:{gw.port}/ws", additional_headers={"Host": "rebind.evil.example"}, open_timeout=5)
    for host in ("localhost", f"127.0.0.1:{gw.port}", "[::1]:8080"):
        assert httpx.get(f"{gw.url}/health", headers={"Host": host}).status_code == 200, host
    named = gateway_factory(MOCK, ALLOWED_HOSTS="gateway.example, api.example")
    assert httpx.get(f"{named.url}/health", headers={"Host": "api.example"}).status_code == 200
    assert httpx.get(f"{named.url}/health", headers={"Host": "localhost"}).status_code == 400
    anyone = gateway_factory(MOCK, ALLOWED_HOSTS="*")
    assert httpx.get(f"{anyone.url}/health", headers={"Host": "whatever.example"}).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_only_json_bodies_are_taken(gateway_factory: GatewayFactory, content_type: str | None) -> None:
    """text/plain and form bodies are CORS "simple requests": a web page can send them cross-origin with no
    preflight. OpenAI's API answers them 400/415 as well; Envoy's ext-proc and nginx leave it to the app."""
    gw = gateway_factory(MOCK)
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    resp = httpx.post(f"{gw.url}/v1/chat/completions", content=body, headers=headers)
    assert resp.status_code == 415 and resp.json()["error"]["code"] == "unsupported_media_type"
    beacon = httpx.post(f"{gw.url}/inference", content=b'{"model": "m", "prompt": "x"}', headers=headers)
    assert beacon.status_code == 415 and beacon.json()["success"] is False
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT).status_code == 200
    json_charset = {"Content-Type": "application/json; charset=utf-8"}
    assert httpx.post(f"{gw.url}/v1/chat/completions", content=body, headers=json_charset).status_code == 200


@pytest.mark.parametrize("max_tokens", [2048.0, 1e300, 5000])
def test_whole_floats_are_clamped_like_integers(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream], max_tokens: float
) -> None:
    """`max_tokens: 2048.0` is 2048 to every JSON reader; OpenRouter clamps it the same way either spelled."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a), max_output_length=100))
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json={**CHAT, "max_tokens": max_tokens})
    assert resp.status_code == 200
    sent = a.requests[-1].body["max_tokens"]
    assert sent == 100 and type(sent) is int


def test_small_whole_floats_reach_the_upstream_as_integers(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a), max_output_length=100))
    assert httpx.post(f"{gw.url}/v1/chat/completions", json={**CHAT, "max_tokens": 20.0}).status_code == 200
    assert a.requests[-1].body["max_tokens"] == 20 and type(a.requests[-1].body["max_tokens"]) is int


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**CHAT, "messages": [{"role": "assistant", "content": "x", "tool_calls": 5}]}, "messages[0].tool_calls"),
        ({**CHAT, "messages": [{"role": "user", "content": [1, 2]}]}, "messages[0].content"),
        ({**CHAT, "messages": [{"role": "user", "content": "x", "name": {"a": 1}}]}, "messages[0].name"),
    ],
)
def test_malformed_messages_are_a_400_naming_the_field(
    gateway_factory: GatewayFactory, body: dict[str, Any], param: str
) -> None:
    """OpenAI answers these with 400 invalid_request_error and the offending `param`; they used to be a 500."""
    gw = gateway_factory(MOCK)
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json=body)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == param


@pytest.mark.parametrize("depth", [300, 1000])
def test_json_nested_too_deeply_is_a_400_before_any_upstream_call(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream], depth: int
) -> None:
    """orjson reads 1024 levels but writes 254: such a body used to pass intake and fail with a 500 when it
    was sent upstream or written to the call log. Python's json module and h11 have no such limit; aiohttp's
    json() inherits the json module's recursion limit (a RecursionError, a 500)."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    deep = "[" * depth + "]" * depth
    raw = '{"model": "m", "messages": [{"role": "user", "content": "x"}], "extra": ' + deep + "}"
    resp = httpx.post(f"{gw.url}/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "nested too deeply" in resp.json()["error"]["message"]
    assert a.count == 0
