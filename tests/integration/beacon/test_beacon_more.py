"""More of Project Beacon's API on loopback: the Maps proxy's query, cache and CORS; the WebSocket's stream cap;
failure metadata; timeouts; Beacon deployments streamed through the OpenAI API; /v1/inference."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from websockets.sync.client import ClientConnection, connect

from gateway.beacon.maps import MapsCache, MissBudget
from tests.conftest import GatewayFactory
from tests.integration.beacon.conftest import FakeMaps
from tests.integration.beacon.test_beacon_api import execute_via_router, fleet_config
from tests.support.beacon_upstreams import FakeGolem
from tests.support.sse import parse_sse

MOCK_ONLY = {"models": [{"id": "m", "route": [{"kind": "mock"}]}]}


def test_maps_forwards_the_client_query_but_never_its_key(gateway_factory: GatewayFactory, maps: FakeMaps) -> None:
    gw = gateway_factory(MOCK_ONLY, GOOGLE_MAPS_API_KEY="maps-secret", MAPS_API_URL=maps.url)
    query = "callback=initMap&libraries=places&v=weekly&key=client-key&KEY=other"
    first = httpx.get(f"{gw.url}/maps/api.js?{query}")
    assert first.status_code == 200 and "maps-secret" not in first.text
    sent = maps.queries[0]
    assert dict(sent) == {"callback": "initMap", "libraries": "places", "v": "weekly", "key": "maps-secret"}
    assert [k for k, _ in sent].count("key") == 1 and ("libraries", "geometry") not in sent
    assert httpx.get(f"{gw.url}/maps/api.js?{query}").content == first.content and len(maps.queries) == 1
    # the same parameters in another order are the same query; a different query is fetched and kept apart
    assert httpx.get(f"{gw.url}/maps/api.js?v=weekly&libraries=places&callback=initMap").content == first.content
    other = httpx.get(f"{gw.url}/maps/api.js?callback=other")
    assert len(maps.queries) == 2 and other.content != first.content
    assert dict(maps.queries[1]) == {"callback": "other", "libraries": "geometry", "key": "maps-secret"}
    httpx.get(f"{gw.url}/maps/api.js")
    assert dict(maps.queries[2]) == {"libraries": "geometry", "key": "maps-secret"}


def test_maps_cache_is_bounded(gateway_factory: GatewayFactory, maps: FakeMaps) -> None:
    gw = gateway_factory(MOCK_ONLY, GOOGLE_MAPS_API_KEY="maps-secret", MAPS_API_URL=maps.url)
    gw.app.state.maps_cache = MapsCache(budget=MissBudget(per_client=100, total=100))  # room for 41 misses
    with httpx.Client(base_url=gw.url) as http:
        for n in range(40):
            assert http.get("/maps/api.js", params={"callback": f"cb{n}"}).status_code == 200
        assert len(gw.app.state.maps_cache.entries) <= 32
        http.get("/maps/api.js", params={"callback": "cb39"})
        assert len(maps.queries) == 40  # recent: still cached
        http.get("/maps/api.js", params={"callback": "cb0"})
        assert len(maps.queries) == 41  # the oldest was evicted


def test_maps_serves_the_stale_copy_when_the_refresh_fails(gateway_factory: GatewayFactory, maps: FakeMaps) -> None:
    gw = gateway_factory(MOCK_ONLY, GOOGLE_MAPS_API_KEY="maps-secret", MAPS_API_URL=maps.url, MAPS_CACHE_SECONDS="0")
    fresh = httpx.get(f"{gw.url}/maps/api.js?callback=initMap")
    assert fresh.status_code == 200 and "x-maps-cache" not in fresh.headers
    maps.status = 500
    stale = httpx.get(f"{gw.url}/maps/api.js?callback=initMap")
    assert len(maps.queries) == 2  # the copy had expired: a refresh was tried
    assert stale.status_code == 200 and stale.content == fresh.content
    assert stale.headers["x-maps-cache"] == "stale" and stale.headers["cache-control"] == "public, max-age=60"
    never = httpx.get(f"{gw.url}/maps/api.js?callback=never")  # nothing cached for this query: nothing to fall back on
    assert never.status_code == 502 and never.json()["error"]["code"] == "maps_upstream_error"
    assert "maps-secret" not in never.text
    maps.server.shutdown()
    maps.server.server_close()
    unreachable = httpx.get(f"{gw.url}/maps/api.js?callback=gone")
    assert unreachable.status_code == 502 and "maps-secret" not in unreachable.text


def test_maps_cors_follows_cors_origins(gateway_factory: GatewayFactory, maps: FakeMaps) -> None:
    gw = gateway_factory(
        MOCK_ONLY, GOOGLE_MAPS_API_KEY="maps-secret", MAPS_API_URL=maps.url, CORS_ORIGINS="https://beacon.example"
    )
    allowed = httpx.get(f"{gw.url}/maps/api.js", headers={"Origin": "https://beacon.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://beacon.example"
    foreign = httpx.get(f"{gw.url}/maps/api.js", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 200 and "access-control-allow-origin" not in foreign.headers


def _until(ws: ClientConnection, kind: str, timeout: float = 10) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
        if message["type"] == kind:
            return message


def test_websocket_inference_shares_the_client_stream_cap(
    gateway_factory: GatewayFactory, fleet: dict[str, Any]
) -> None:
    fleet["golem-eu"].behaviour = {"delay": 0.6}
    gw = gateway_factory(fleet_config(fleet), MAX_STREAMS_PER_CLIENT="1")
    inference = {"type": "inference", "model": "llama3.2-1b", "prompt": "slow", "region_preference": "eu-west"}
    with connect(f"ws://127.0.0.1:{gw.port}/ws", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "connection"
        ws.send(json.dumps(inference))
        ws.send(json.dumps({**inference, "trace_id": "second"}))
        refused = _until(ws, "result")
        assert refused["success"] is False and refused["error_code"] == "NO_PROVIDER_AVAILABLE"
        assert "too many concurrent streams" in refused["error"] and refused["trace_id"] == "second"
        # the HTTP stream path draws on the same budget while the WebSocket's call runs
        streamed = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "llama3.2-1b", "messages": [{"role": "user", "content": "x"}], "stream": True},
        )
        assert streamed.status_code == 429 and streamed.json()["error"]["code"] == "too_many_streams"
        done = _until(ws, "result")
        assert done["success"] is True and done["response"] == "[golem-eu] echo: slow"
        assert gw.services.stream_cap.open_streams("127.0.0.1") == 0  # released on completion
        fleet["golem-eu"].behaviour = {}
        ws.send(json.dumps({**inference, "prompt": "again"}))
        again = _until(ws, "result")
        assert again["success"] is True and again["response"] == "[golem-eu] echo: again"
        # released on error too
        for fake in fleet.values():
            fake.behaviour = {"status": 500}
        ws.send(json.dumps(inference))
        assert _until(ws, "result")["error_code"] == "PROVIDER_ERROR"
        assert gw.services.stream_cap.open_streams("127.0.0.1") == 0
        for fake in fleet.values():
            fake.behaviour = {"delay": 5}
        ws.send(json.dumps(inference))
        deadline = time.monotonic() + 5
        while gw.services.stream_cap.open_streams("127.0.0.1") != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gw.services.stream_cap.open_streams("127.0.0.1") == 1
    deadline = time.monotonic() + 5  # released on disconnect
    while gw.services.stream_cap.open_streams("127.0.0.1") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gw.services.stream_cap.open_streams("127.0.0.1") == 0


def test_failure_names_the_last_attempted_deployment(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    for fake in fleet.values():
        fake.behaviour = {"status": 500}
    gw = gateway_factory(fleet_config(fleet))
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi"})
    assert status == 502 and body["error_code"] == "PROVIDER_ERROR"
    meta = body["metadata"]
    tried = [a for a in meta["attempts"] if a["outcome"] != "skipped"]
    assert tried and meta["deployment"] == tried[-1]["deployment"]
    regions = {"golem-us": "us-east", "golem-eu": "eu-west", "modal-us": "us-east", "runpod-eu": "eu-west"}
    assert meta["region"] == regions[meta["deployment"]]
    assert meta["provider_type"] == meta["deployment"].split("-")[0] and meta["model"] == "llama3.2-1b"
    assert fleet[meta["deployment"]].count >= 1  # it really was sent a request
    status, body = execute_via_router(
        gw.url, {"model": "llama3.2-1b", "prompt": "hi", "region_preference": "ap-south", "strict_region": True}
    )
    assert status == 503 and set(body["metadata"]) == {"attempts"}  # nothing attempted: nothing to name


def test_a_hanging_provider_times_out_with_504(gateway_factory: GatewayFactory) -> None:
    with FakeGolem.in_thread("golem-slow", "us-east", {"delay": 5}) as slow:
        route: dict[str, Any] = {"kind": "golem", "name": "golem-slow", "base_url": slow.base_url, "region": "us-east"}
        route["timeouts"] = {"first_token": 0.3, "total": 0.5}
        gw = gateway_factory({"models": [{"id": "llama3.2-1b", "route": [route]}]})
        began = time.monotonic()
        status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hang"})
        assert time.monotonic() - began < 4
        assert status == 504 and body["success"] is False and body["error_code"] == "TIMEOUT"
        assert body["metadata"]["deployment"] == "golem-slow"
        assert body["metadata"]["attempts"][-1]["outcome"] == "timeout"


@pytest.mark.parametrize("name", ["golem-us", "modal-us", "runpod-eu"])
def test_non_streaming_beacon_deployment_streams_as_one_chunk(
    gateway_factory: GatewayFactory, fleet: dict[str, Any], name: str
) -> None:
    config = fleet_config(fleet)
    config["models"][0]["route"] = [d for d in config["models"][0]["route"] if d["name"] == name]
    gw = gateway_factory(config)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="k", max_retries=0, timeout=20)
    messages: Any = [{"role": "user", "content": "stream this"}]
    expected = f"[{name}] echo: stream this"
    chunks = list(client.chat.completions.create(model="llama3.2-1b", messages=messages, stream=True))
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert contents == [expected]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    with client.chat.completions.with_streaming_response.create(
        model="llama3.2-1b", messages=messages, stream=True
    ) as raw:
        assert raw.headers["x-gateway-deployment"] == name
        stream = parse_sse(raw.iter_lines(), lines=True)
    assert stream.done and stream.content() == expected
    parsed = stream.chunks()
    with_content = [i for i, c in enumerate(parsed) if c["choices"] and c["choices"][0]["delta"].get("content")]
    with_finish = [i for i, c in enumerate(parsed) if c["choices"] and c["choices"][0].get("finish_reason")]
    assert len(with_content) == 1 and len(with_finish) == 1 and with_content[0] <= with_finish[0]
    assert parsed[with_finish[0]]["choices"][0]["finish_reason"] == "stop"


def test_v1_inference_answers_like_inference(gateway_factory: GatewayFactory, fleet: dict[str, Any]) -> None:
    gw = gateway_factory(fleet_config(fleet))
    payload = {"model": "llama3.2-1b", "prompt": "hi", "region_preference": "eu-west", "trace_id": "t-1"}
    answers = [httpx.post(f"{gw.url}{path}", json=payload, timeout=20) for path in ("/inference", "/v1/inference")]
    plain, v1 = (resp.json() for resp in answers)
    assert [resp.status_code for resp in answers] == [200, 200]
    assert set(plain) == set(v1) and set(plain["metadata"]) == set(v1["metadata"])
    for field in ("success", "response", "error", "error_code", "provider_used", "trace_id"):
        assert v1[field] == plain[field]
    assert v1["response"] == "[golem-eu] echo: hi" and v1["request_id"] != plain["request_id"]
    bad = httpx.post(f"{gw.url}/v1/inference", json={"model": "llama3.2-1b"}, timeout=20)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_REQUEST"
