"""/maps/api.js forwards only the Maps bootstrap's parameters, normalised, and rate-limits its cache misses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.conftest import GatewayFactory
from tests.integration.beacon.conftest import FakeMaps
from tests.support.gateway import ThreadGateway

MOCK_ONLY = {"models": [{"id": "m", "route": [{"kind": "mock"}]}]}
# gateway/beacon/maps.py's budget per minute (tests/unit/beacon/test_maps.py checks the two agree)
MISSES_PER_CLIENT = 10
MISSES_TOTAL = 30


@contextmanager
def client_from(gw: ThreadGateway, address: str) -> Iterator[httpx.Client]:
    """A client whose connections come from another loopback address: another client IP to the gateway."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=gw.url, transport=transport) as http:
        yield http


def test_only_bootstrap_parameters_are_forwarded_normalised(gateway_factory: GatewayFactory, maps: FakeMaps) -> None:
    """nginx's proxy_cache_key is what makes two requests one cache entry; here the key is the allow-listed,
    sorted query, so inventing parameters (or reordering them) cannot force another upstream fetch."""
    gw = gateway_factory(MOCK_ONLY, GOOGLE_MAPS_API_KEY="maps-secret", MAPS_API_URL=maps.url)
    first = httpx.get(
        f"{gw.url}/maps/api.js?v=weekly&libraries=places,geometry,places&callback=app.initMap&foo=bar&key=x"
        "&language=en-GB&Callback=other"
    )
    assert first.status_code == 200
    assert maps.queries[0] == [
        ("callback", "app.initMap"),
        ("language", "en-GB"),
        ("libraries", "geometry,places"),
        ("v", "weekly"),
        ("key", "maps-secret"),
    ]
    again = httpx.get(
        f"{gw.url}/maps/api.js?language=en-GB&callback=app.initMap&libraries=geometry,places&v=weekly&junk=1&cb=9"
    )
    assert again.content == first.content and len(maps.queries) == 1, "the same script: no second fetch"
    for bad in ("callback=alert(1)", "callback=" + "a" * 65, "libraries=places%0Ax", "region=<script>"):
        refused = httpx.get(f"{gw.url}/maps/api.js?{bad}")
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["code"] == "invalid_maps_parameter"
        assert refused.json()["error"]["param"] == bad.split("=")[0]
    assert len(maps.queries) == 1


def test_cache_misses_are_limited_per_client_and_in_all(gateway_factory: GatewayFactory, maps: FakeMaps) -> None:
    """nginx's limit_req keyed on $binary_remote_addr (with limit_req_status 429) in front of a cache: each client
    may cost a few upstream fetches a minute, all clients together a few more, and a refusal says when to retry."""
    gw = gateway_factory(MOCK_ONLY, GOOGLE_MAPS_API_KEY="maps-secret", MAPS_API_URL=maps.url)
    with client_from(gw, "127.0.0.1") as http:
        for n in range(MISSES_PER_CLIENT):
            assert http.get("/maps/api.js", params={"callback": f"cb{n}"}).status_code == 200
        refused = http.get("/maps/api.js", params={"callback": "one_too_many"})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "maps_rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert http.get("/maps/api.js", params={"callback": "cb0"}).status_code == 200, "cached: no fetch needed"
    assert len(maps.queries) == MISSES_PER_CLIENT
    fetched = MISSES_PER_CLIENT
    address = 2
    while fetched < MISSES_TOTAL:  # other clients use up the overall budget
        with client_from(gw, f"127.0.0.{address}") as http:
            for _ in range(min(MISSES_PER_CLIENT, MISSES_TOTAL - fetched)):
                assert http.get("/maps/api.js", params={"callback": f"cb{fetched}"}).status_code == 200
                fetched += 1
        address += 1
    with client_from(gw, f"127.0.0.{address}") as http:
        assert http.get("/maps/api.js", params={"callback": "fresh_client"}).status_code == 429
    assert len(maps.queries) == MISSES_TOTAL


def test_a_refused_refresh_serves_the_stale_copy(gateway_factory: GatewayFactory, maps: FakeMaps) -> None:
    """nginx's proxy_cache_use_stale: when a fresh copy cannot be had, the expired one is better than an error."""
    gw = gateway_factory(MOCK_ONLY, GOOGLE_MAPS_API_KEY="maps-secret", MAPS_API_URL=maps.url, MAPS_CACHE_SECONDS="0")
    with client_from(gw, "127.0.0.1") as http:
        first = http.get("/maps/api.js", params={"callback": "initMap"})
        for _ in range(MISSES_PER_CLIENT - 1):  # every request is a refresh (nothing stays fresh for 0 s)
            assert http.get("/maps/api.js", params={"callback": "initMap"}).headers.get("x-maps-cache") is None
        stale = http.get("/maps/api.js", params={"callback": "initMap"})
    assert len(maps.queries) == MISSES_PER_CLIENT
    assert stale.status_code == 200 and stale.headers["x-maps-cache"] == "stale"
    assert stale.headers["cache-control"] == "public, max-age=60" and stale.content.startswith(b"/* ")
    assert first.status_code == 200
