"""SIGTERM to a real gateway process mid-stream: the stream completes, its log row exists, exit code 0."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx

from tests.support.gateway import ProcessGateway, base_env, write_config
from tests.support.sse import parse_sse

SLOW = {
    "models": [{"id": "slow", "route": [{"kind": "mock", "mock": {"completion_tokens": 20, "chunk_delay_ms": 80}}]}]
}


def test_sigterm_mid_stream_drains_and_flushes(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), **write_config(tmp_path, SLOW), "CALL_LOG_SYNC": "false"}
    gw = ProcessGateway(env).start()
    try:
        body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "go"}]}
        with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=30) as resp:
            request_id = resp.headers["x-request-id"]
            pieces = resp.iter_bytes()
            first = next(pieces)
            gw.signal(signal.SIGTERM)
            events = parse_sse([first, *pieces])
        assert events.done and len(events.content().split()) == 20
        assert gw.wait(timeout=30) == 0
    finally:
        gw.stop()
    row = (
        sqlite3.connect(env["SQLITE_DB_PATH"])
        .execute("select status_code, completion_tokens, stream from api_logs where request_id = ?", (request_id,))
        .fetchone()
    )
    assert row == (200, 20, 1)
