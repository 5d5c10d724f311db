"""Beacon's calls go through the one call ledger: a JSON log line per call and the client's own rate limits,
on POST /inference and WebSocket inference alike (both were missing before the ledger)."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.conftest import GatewayFactory
from tests.support.beacon_upstreams import FakeGolem
from tests.support.gateway import write_config
from tests.support.served import GATEWAY_SERVE, isolated_env, json_lines


def golem_config(node: FakeGolem) -> dict[str, Any]:
    route = {"kind": "golem", "name": "golem-1", "base_url": node.base_url, "region": "us-east"}
    return {"models": [{"id": "llama3.2-1b", "route": [route]}]}


def ws_inference(ws: ClientConnection, prompt: str) -> dict[str, Any]:
    """Send one inference over the socket and return its result message (chunks are skipped)."""
    ws.send(json.dumps({"type": "inference", "model": "llama3.2-1b", "prompt": prompt}))
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] == "result":
            return message


def test_every_beacon_call_writes_one_json_log_line(serve: Any, tmp_path: Path) -> None:
    with FakeGolem.in_thread("golem-us", "us-east") as node:
        env = isolated_env(tmp_path, LOG_LEVEL="INFO", **write_config(tmp_path, golem_config(node)))
        server = serve(GATEWAY_SERVE, env)
        http = httpx.post(f"{server.url}/inference", json={"model": "llama3.2-1b", "prompt": "over http"}, timeout=10)
        missing = httpx.post(f"{server.url}/inference", json={"model": "no-such", "prompt": "x"}, timeout=10)
        with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "connection"
            streamed = ws_inference(ws, "over the socket")
        code, _ = server.terminate()
    assert code == 0
    assert http.status_code == 200 and streamed["success"] is True
    assert missing.status_code == 404 and missing.json()["error_code"] == "NO_PROVIDER_AVAILABLE"
    lines = {line["request_id"]: line for line in json_lines(server.stderr) if line["logger"] == "gateway.calls"}
    wanted = {
        http.json()["request_id"]: ("/inference", 200, "golem-1"),
        missing.json()["request_id"]: ("/inference", 404, ""),
        streamed["request_id"]: ("/ws", 200, "golem-1"),
    }
    assert {rid: (lines[rid]["endpoint"], lines[rid]["status"], lines[rid]["deployment"]) for rid in wanted} == wanted
    assert lines[streamed["request_id"]]["stream"] is True
    assert all(line["msg"] == "call" and line["latency_ms"] > 0 for line in lines.values())


def test_client_rpm_holds_on_inference_and_websocket(gateway_factory: GatewayFactory) -> None:
    with FakeGolem.in_thread("golem-us", "us-east") as node:
        gw = gateway_factory(golem_config(node), CLIENT_RPM="2")
        first = httpx.post(f"{gw.url}/inference", json={"model": "llama3.2-1b", "prompt": "one"})
        with connect(f"ws://127.0.0.1:{gw.port}/ws", open_timeout=5) as ws:
            json.loads(ws.recv(timeout=5))
            second = ws_inference(ws, "two")
            refused_ws = ws_inference(ws, "three")
        refused = httpx.post(f"{gw.url}/inference", json={"model": "llama3.2-1b", "prompt": "four"})
        sent = node.count
    assert first.status_code == 200 and second["success"] is True
    assert refused.status_code == 429 and refused.headers["retry-after"]
    body = refused.json()
    assert body["success"] is False and body["error_code"] == "NO_PROVIDER_AVAILABLE"
    assert "rate limit for this client" in body["error"]
    assert refused_ws["success"] is False and "rate limit for this client" in refused_ws["error"]
    assert sent == 2  # the refused calls never reached the node
    with sqlite3.connect(gw.settings.env["SQLITE_DB_PATH"]) as db:
        statuses = sorted(s for (s,) in db.execute("select status_code from api_logs"))
    assert statuses == [200, 200, 429, 429]


def test_client_tpm_holds_on_inference(gateway_factory: GatewayFactory) -> None:
    with FakeGolem.in_thread("golem-us", "us-east") as node:
        node.behaviour = {"delay": 1.0}
        # one call's estimate (prompt + max_tokens 600) fills the 700-token budget while it runs
        gw = gateway_factory(golem_config(node), CLIENT_TPM="700")
        body = {"model": "llama3.2-1b", "prompt": "count me", "max_tokens": 600}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            running = pool.submit(httpx.post, f"{gw.url}/inference", json=body, timeout=10)
            deadline = time.monotonic() + 5
            while node.count < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            refused = httpx.post(f"{gw.url}/inference", json=body, timeout=10)
            first = running.result()
    assert first.status_code == 200
    assert refused.status_code == 429 and refused.json()["error_code"] == "NO_PROVIDER_AVAILABLE"
    assert "tokens" in refused.json()["error"] or "per minute" in refused.json()["error"]
