"""Access control through real sockets: client keys, the admin key, CORS, header and stream limits."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from gateway.settings import ROOT
from tests.conftest import GatewayFactory

MOCK = {"models": [{"id": "mock", "route": [{"kind": "mock", "mock": {"completion_tokens": 5}}]}]}
SLOW = {
    "models": [{"id": "mock", "route": [{"kind": "mock", "mock": {"completion_tokens": 30, "chunk_delay_ms": 50}}]}]
}
CLIENT_KEY = "sk-alice-0123456789secret"
ADMIN_KEY = "sk-admin-9876543210secret"
ADMIN_ROUTES = ["/routing", "/stats", "/api/v1/generation?id=x", "/metrics"]
BEACON_PATHS = {"/inference", "/v1/inference", "/providers"}


def keyed(factory: GatewayFactory, models: dict = MOCK, **env: str):
    return factory(models, GATEWAY_API_KEYS=f"alice:{CLIENT_KEY}", ADMIN_API_KEY=ADMIN_KEY, **env)


def test_client_keys_guard_the_model_api(gateway_factory: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gw = keyed(gateway_factory)
    for path in ("/v1/models", "/models"):
        resp = httpx.get(gw.url + path)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "missing_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key="sk-wrong", max_retries=0).models.list()
    good = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    assert [m.id for m in good.models.list().data] == ["mock"]
    good.chat.completions.create(
        model="mock",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"HTTP-Referer": "https://app.example", "X-Title": "Demo"},
    )
    assert httpx.get(f"{gw.url}/health").status_code == 200  # health stays public
    db = Path(gw.settings.env["SQLITE_DB_PATH"])
    row = sqlite3.connect(db).execute("select api_key_name, metadata from api_logs").fetchone()
    assert row[0] == "alice" and "app.example" in row[1] and "Demo" in row[1]
    for secret in (CLIENT_KEY, ADMIN_KEY, "sk-wrong"):
        assert secret.encode() not in db.read_bytes()
        assert secret not in caplog.text


@pytest.mark.parametrize("path", ADMIN_ROUTES)
def test_admin_routes_need_the_admin_key(gateway_factory: GatewayFactory, path: str) -> None:
    gw = keyed(gateway_factory)
    assert httpx.get(gw.url + path).status_code == 401
    wrong = httpx.get(gw.url + path, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert wrong.status_code == 403 and CLIENT_KEY not in wrong.text
    ok = httpx.get(gw.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert ok.status_code in (200, 404), ok.text  # 404: generation id x does not exist


def test_metrics_can_be_opened_to_scrapers(gateway_factory: GatewayFactory) -> None:
    gw = keyed(gateway_factory, METRICS_PUBLIC="true")
    assert httpx.get(f"{gw.url}/metrics").status_code == 200
    assert httpx.get(f"{gw.url}/routing").status_code == 401


def test_open_gateway_admin_routes_answer_loopback_only(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK)
    assert httpx.get(f"{gw.url}/v1/models").status_code == 200
    assert httpx.get(f"{gw.url}/routing").status_code == 200  # from 127.0.0.1
    from gateway.access import Access, AccessPolicy

    assert AccessPolicy().decide(Access.ADMIN, "", "203.0.113.9").status == 403


def test_cors_origins_and_no_credentials_with_wildcard(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, CORS_ORIGINS="https://app.example")
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    resp = httpx.options(f"{gw.url}/v1/chat/completions", headers=preflight)
    assert resp.status_code == 200 and resp.headers["access-control-allow-origin"] == "https://app.example"
    evil = httpx.options(f"{gw.url}/v1/chat/completions", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers or evil.status_code == 400
    gw2 = gateway_factory(MOCK, CORS_ORIGINS="*")
    resp = httpx.get(f"{gw2.url}/v1/models", headers={"Origin": "https://any.example"})
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in resp.headers


def test_header_limit_gives_431(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, MAX_HEADER_BYTES="2000")
    resp = httpx.get(f"{gw.url}/v1/models", headers={"X-Big": "x" * 4000})
    assert resp.status_code == 431 and resp.json()["error"]["code"] == "request_headers_too_large"


def test_concurrent_stream_cap_per_client(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(SLOW, MAX_STREAMS_PER_CLIENT="1")
    body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    started = threading.Event()

    def hold() -> None:
        with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=20) as resp:
            for _ in resp.iter_bytes():
                started.set()

    thread = threading.Thread(target=hold)
    thread.start()
    assert started.wait(5)
    second = httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=10)
    assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_streams"
    thread.join(10)
    time.sleep(0.05)
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=20) as resp:
        assert resp.status_code == 200


def test_keys_file_holds_hashes_made_by_the_cli(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "hash-key", "bob", "--stdin"],
        input="sk-bob-key\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert made.returncode == 0 and made.stdout.startswith("bob sha256:") and "sk-bob-key" not in made.stdout
    keys = tmp_path / "keys"
    keys.write_text("# clients\n" + made.stdout)
    gw = gateway_factory(MOCK, GATEWAY_KEYS_FILE=str(keys))
    assert httpx.get(f"{gw.url}/v1/models", headers={"Authorization": "Bearer sk-bob-key"}).status_code == 200
    assert httpx.get(f"{gw.url}/v1/models", headers={"Authorization": "Bearer sk-other"}).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("GET", "/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/inference"),
        ("POST", "/v1/inference"),
        ("GET", "/providers"),
        ("GET", "/api/v1/models"),
    ],
)
def test_every_client_route_refuses_missing_and_wrong_keys(
    gateway_factory: GatewayFactory, method: str, path: str
) -> None:
    gw = keyed(gateway_factory)
    for headers in ({}, {"Authorization": "Bearer sk-nope"}, {"Authorization": f"Basic {CLIENT_KEY}"}):
        resp = httpx.request(method, gw.url + path, headers=headers, json={})
        assert resp.status_code == 401, (path, headers, resp.status_code)
        if path in BEACON_PATHS:  # each surface refuses in its own shape
            body = resp.json()
            assert body["success"] is False and body["error_code"] == "UNAUTHORIZED" and body["error"]
        elif path.startswith("/api/v1/"):  # OpenRouter's: the status as the code, ours in metadata
            error = resp.json()["error"]
            assert error["code"] == 401 and error["metadata"]["error_type"] == "authentication"
        else:
            assert set(resp.json()["error"]) == {"message", "type", "param", "code"}
        assert CLIENT_KEY not in resp.text and "sk-nope" not in resp.text


def test_websocket_needs_a_key_when_keys_are_configured(gateway_factory: GatewayFactory) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    gw = keyed(gateway_factory)
    with pytest.raises(InvalidStatus):
        connect(f"ws://127.0.0.1:{gw.port}/ws", open_timeout=5)
    with connect(
        f"ws://127.0.0.1:{gw.port}/ws", additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"}, open_timeout=5
    ) as ws:
        assert '"connection"' in ws.recv(timeout=5)
