"""An upstream's Retry-After is honoured up to RETRY_AFTER_CAP, shows in /routing, and a reload lifts it."""

from __future__ import annotations

import time

import httpx

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.integration.limits.test_resilience import chat, wait_until

HUGE = "1000000000000"  # the audit's value: 31,700 years


def row(url: str, name: str) -> dict:
    rows = httpx.get(f"{url}/routing").json()["models"]["m"]["deployments"]
    return next(r for r in rows if r["deployment"] == name)


def test_a_huge_retry_after_blocks_for_the_cap_only(gateway_factory: GatewayFactory, upstreams) -> None:
    """Envoy's rate_limited_retry_back_off ignores a reset header longer than max_interval (300 s by default);
    we keep the upstream's wish but cap it, so a deployment comes back after RETRY_AFTER_CAP whatever it said."""
    a, b = upstreams
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)), RETRY_AFTER_CAP="1")
    a.behaviour = {"status": 429, "retry_after": HUGE}
    assert chat(gw.url).headers["x-gateway-deployment"] == "b"  # fell back while `a` is blocked
    blocked = row(gw.url, "a")
    assert 0 < blocked["blocked_for_s"] <= 1 and blocked["blocked_status"] == 429, blocked
    assert blocked["available"] is False and "Retry-After" in blocked["reason"], blocked
    a.behaviour = {}
    time.sleep(1.1)
    assert wait_until(lambda: row(gw.url, "a")["available"]), row(gw.url, "a")
    assert chat(gw.url).headers["x-gateway-deployment"] == "a", "the cap ran out: `a` serves again"
    assert row(gw.url, "a")["blocked_for_s"] == 0


def test_routing_shows_the_block_and_a_reload_lifts_it(gateway_factory: GatewayFactory, upstreams) -> None:
    """A reload means the operator changed something (a key, a quota), so it lifts blocks: nginx without an
    upstream `zone` keeps max_fails / fail_timeout state in each worker, and a reload's new workers start over."""
    a, b = upstreams
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)))
    a.behaviour = {"status": 429, "retry_after": HUGE}
    assert chat(gw.url).headers["x-gateway-deployment"] == "b"
    blocked = row(gw.url, "a")
    assert 3590 <= blocked["blocked_for_s"] <= 3600, "the default cap is an hour"
    assert blocked["available"] is False and blocked["weight"] == 1.0, blocked
    assert row(gw.url, "b")["available"] is True
    a.behaviour = {}
    assert httpx.post(f"{gw.url}/routing", json={"reload": True}).status_code == 200
    lifted = row(gw.url, "a")
    assert lifted["blocked_for_s"] == 0 and lifted["available"] is True and lifted["reason"] == "", lifted
    assert chat(gw.url).headers["x-gateway-deployment"] == "a"


def test_the_client_is_told_to_wait_no_longer_than_the_cap(gateway_factory: GatewayFactory, upstreams) -> None:
    """With nothing to fall back on, the client's Retry-After is the block's (capped), not the upstream's value:
    nginx passes an upstream's header through, but here the gateway owns the wait it announces."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a)), RETRY_AFTER_CAP="30")
    a.behaviour = {"status": 429, "retry_after": HUGE}
    first = chat(gw.url)
    assert first.status_code == 429
    second = chat(gw.url)
    assert second.status_code == 429 and a.count == 1
    assert 1 <= int(second.headers["retry-after"]) <= 30
    assert int(first.headers["retry-after"]) <= 30, first.headers["retry-after"]
