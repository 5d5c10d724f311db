"""The audit's findings on the server side (issue 15 items 6, 7, 18), through real sockets against real processes:
`gateway serve`, and plain uvicorn with `--http gateway.http_protocol:GatewayHttpProtocol`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.settings import ROOT, Settings
from tests.support.gateway import ProcessGateway, base_env, write_config
from tests.support.raw_http import RawConnection, RawResponse, vm_rss_kib

MODELS = {
    "models": [
        {"id": "mock", "route": [{"kind": "mock", "mock": {"completion_tokens": 2}}]},
        {"id": "slow", "route": [{"kind": "mock", "mock": {"completion_tokens": 40, "chunk_delay_ms": 100}}]},
    ]
}
HEAD_TIMEOUT_S = 1.0
GET = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
NGINX = ROOT / "infrastructure" / "nginx" / "hybrid-inference.conf"


def started(directory: Path, **env: str) -> ProcessGateway:
    return ProcessGateway({**base_env(directory), **write_config(directory, MODELS), **env}).start()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessGateway]:
    """`gateway serve` with a 1 s head timeout and the default MAX_HEADER_BYTES (32 KiB)."""
    gw = started(tmp_path_factory.mktemp("limits"), REQUEST_HEAD_TIMEOUT=str(HEAD_TIMEOUT_S))
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessGateway]:
    """`gateway serve` that serves two connections at once and keeps an idle one 1 s."""
    gw = started(
        tmp_path_factory.mktemp("capped"), MAX_CONNECTIONS="2", KEEPALIVE_TIMEOUT="1", REQUEST_HEAD_TIMEOUT="5"
    )
    yield gw
    gw.stop()


def assert_openai_error(response: RawResponse, status: int, code: str) -> None:
    assert response.status == status, response
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["param"] is None and error["message"]
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")


def trickle(conn: RawConnection, within: float) -> float:
    """Send one header byte every 0.2 s until the server answers or closes; the seconds that took."""
    began = time.monotonic()
    conn.send(GET + b"X-Slow: ")
    while time.monotonic() - began < within:
        if not conn.receive(0.2):
            break
        if conn.buffer:
            break
        conn.send(b"a")
    return time.monotonic() - began


@pytest.mark.parametrize("after_a_response", [False, True], ids=["new-connection", "keep-alive"])
def test_a_trickling_head_is_cut_off_with_408(gateway: ProcessGateway, after_a_response: bool) -> None:
    """Slowloris: a byte every 0.2 s keeps every per-read timeout happy. nginx's client_header_timeout (60 s by
    default) bounds the whole head and then closes without an answer (the log says 408); Envoy's
    request_headers_timeout (off by default) answers 408 `request header timeout`; aiohttp's server closes after
    keepalive_timeout (3630 s) from the connection's start; h11 is sans-IO and has no clock, so uvicorn's h11 and
    httptools protocols waited for ever. Here the deadline runs from the connection's start, or from the end of the
    previous response."""
    with RawConnection(gateway.port) as conn:
        if after_a_response:
            conn.send(GET + b"\r\n")
            assert conn.response().status == 200
        took = trickle(conn, within=HEAD_TIMEOUT_S + 3)
        assert conn.buffer, f"still open after {took:.1f} s of trickling"
        assert_openai_error(conn.response(), 408, "request_timeout")
        assert conn.closed_within(3) is not None
    assert HEAD_TIMEOUT_S * 0.8 < took < HEAD_TIMEOUT_S + 1.5


def test_a_silent_connection_is_closed(gateway: ProcessGateway) -> None:
    """A connection that never sends a byte held its slot for ever. nginx applies client_header_timeout from the
    accept and closes silently; Envoy's connection idle_timeout (1 h by default) closes it; aiohttp's server closes
    it after keepalive_timeout (3630 s). Nothing of a request arrived, so nothing is answered: a close, as when an
    idle keep-alive connection expires."""
    with RawConnection(gateway.port) as conn:
        took = conn.closed_within(HEAD_TIMEOUT_S + 3)
        assert took is not None, "a silent connection was still open"
        assert conn.buffer == b""
    assert HEAD_TIMEOUT_S * 0.8 < took < HEAD_TIMEOUT_S + 1.5


def test_an_oversized_head_is_refused_before_it_is_all_sent(gateway: ProcessGateway) -> None:
    """A 64 MiB header, sent in 64 KiB pieces: the 431 must arrive long before the end, and the server must not
    hold the head. nginx reads a head into large_client_header_buffers (4 x 8 KiB) and answers 400 `Request Header
    Or Cookie Too Large` (414 for a request line) once they are full; Envoy answers 431 past max_request_headers_kb
    (60 KiB); h11 raises past max_incomplete_event_size (16 KiB), which uvicorn's h11 protocol answers with a
    plain 400; aiohttp answers 400 `Got more than 8190 bytes` per line. httptools has no limit: uvicorn read the
    whole head before the app's middleware could count it (+138 MB RSS for 150 MB)."""
    pid = gateway.proc.pid if gateway.proc else 0
    before = vm_rss_kib(pid)
    total, piece, sent = 64 * 2**20, b"a" * 65536, 0
    with RawConnection(gateway.port) as conn:
        conn.send(GET + b"X-Big: ")
        while sent < total and not conn.answered():
            conn.send(piece)
            sent += len(piece)
        if sent >= total:
            conn.send(b"\r\n\r\n")
        assert_openai_error(conn.response(), 431, "request_headers_too_large")
        grown_mib = (vm_rss_kib(pid) - before) / 1024
        assert sent < total / 4, f"no answer before the head's end ({sent / 2**20:.0f} MiB); RSS +{grown_mib:.0f} MiB"
        assert grown_mib < 16, f"the server grew by {grown_mib:.0f} MiB"
        assert conn.closed_within(5) is not None


def test_heads_and_bodies_within_the_limits_are_served(gateway: ProcessGateway) -> None:
    """The count stops where the head ends: a 30 KiB head sent in 1 KiB pieces is served, and so is a request whose
    small head and 200 KiB body arrive in one write (more than MAX_HEADER_BYTES in the first read). A guard for the
    fix, not a finding: it passes before and after."""
    with RawConnection(gateway.port) as conn:
        head = GET + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(30)) + b"\r\n"
        for start in range(0, len(head), 1024):
            conn.send(head[start : start + 1024])
        assert conn.response().status == 200
        body = orjson.dumps({"model": "mock", "messages": [{"role": "user", "content": "x" * 200_000}]})
        post = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        conn.send(post + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reply = conn.response()
        assert reply.status == 200, reply.body[:300]
        assert reply.json()["object"] == "chat.completion"


def test_connections_above_max_connections_get_503(capped: ProcessGateway) -> None:
    """MAX_CONNECTIONS=2: two streams in flight are served, a third connection's request gets 503 in OpenAI's shape
    (uvicorn's limit_concurrency answers a plain-text `Service Unavailable`). nginx's limit_conn answers 503 by
    default (limit_conn_status), past worker_connections it stops accepting; Envoy closes connections past a
    listener's connection limit and answers 503 `envoy overloaded` from its overload manager; aiohttp's server has
    no cap; httpx on the client side queues past its pool's max_connections (100)."""
    stream = orjson.dumps({"model": "slow", "stream": True, "messages": [{"role": "user", "content": "go"}]})
    post = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    held = [RawConnection(capped.port) for _ in range(2)]
    try:
        for conn in held:
            conn.send(post + b"Content-Length: %d\r\n\r\n" % len(stream) + stream)
            assert conn.response_head()[0] == 200
        with RawConnection(capped.port) as third:
            third.send(GET + b"\r\n")
            refused = third.response()
            assert_openai_error(refused, 503, "too_many_connections")
            assert refused.headers["connection"] == "close" and refused.headers["retry-after"] == "1"
    finally:
        for conn in held:
            conn.close()
    deadline = time.monotonic() + 5
    while httpx.get(f"{capped.url}/health").status_code != 200:  # the streams end when their client has gone
        assert time.monotonic() < deadline, "still refusing after the held connections closed"
        time.sleep(0.1)


def test_an_idle_keep_alive_connection_is_closed_after_keepalive_timeout(capped: ProcessGateway) -> None:
    """KEEPALIVE_TIMEOUT=1 reaches uvicorn's timeout_keep_alive (default 5 s): the idle connection closes after 1 s,
    well before its 5 s head deadline. nginx's keepalive_timeout is 75 s, Envoy's idle_timeout 1 h, aiohttp's
    keepalive_timeout 3630 s (its 75 s before 3.8); httpx drops pooled connections idle for 5 s (keepalive_expiry),
    so a server that keeps them longer is safe for it."""
    with RawConnection(capped.port) as conn:
        conn.send(GET + b"\r\n")
        assert conn.response().status == 200
        took = conn.closed_within(4)
    assert took is not None and 0.5 < took < 2.5


@pytest.mark.parametrize(
    "request_bytes",
    [b"G\x01T /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", GET + b"Bad Header: x\r\n\r\n"],
    ids=["request-line", "header"],
)
def test_a_malformed_request_gets_an_openai_400(gateway: ProcessGateway, request_bytes: bytes) -> None:
    """uvicorn answers what httptools cannot parse with a plain-text 400 `Invalid HTTP request received.`; an OpenAI
    client then fails on a body it cannot parse. nginx answers its HTML 400 page, Envoy a 400 local reply (plain
    text unless local_reply_config maps it, e.g. to JSON), aiohttp's server a text/plain 400 `Bad status line`,
    h11 raises RemoteProtocolError (uvicorn's h11 protocol answers the same plain 400)."""
    with RawConnection(gateway.port) as conn:
        conn.send(request_bytes)
        assert_openai_error(conn.response(), 400, "malformed_request")
        assert conn.closed_within(3) is not None


def test_plain_uvicorn_with_the_protocol_gets_the_same_limits(serve: Any, tmp_path: Path) -> None:
    """`uvicorn gateway.app:app --http gateway.http_protocol:GatewayHttpProtocol`: the protocol reads
    REQUEST_HEAD_TIMEOUT and MAX_HEADER_BYTES from the environment itself. nginx and Envoy set such limits once per
    listener; aiohttp's server takes max_line_size and max_field_size as arguments of its protocol factory."""
    env = {**base_env(tmp_path), **write_config(tmp_path, MODELS), "REQUEST_HEAD_TIMEOUT": "1"}
    env |= {"MAX_HEADER_BYTES": "4096", "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    protocol = "gateway.http_protocol:GatewayHttpProtocol"
    served = serve([sys.executable, "-m", "uvicorn", "gateway.app:app", "--http", protocol, "--host", "127.0.0.1"], env)
    with RawConnection(served.port) as conn:
        conn.send(GET + b"X-Big: " + b"a" * 8192)
        assert_openai_error(conn.response(), 431, "request_headers_too_large")
    with RawConnection(served.port) as conn:
        took = trickle(conn, within=4)
        assert_openai_error(conn.response(), 408, "request_timeout")
    assert took < 2.5
    assert httpx.get(f"{served.url}/health").status_code == 200


def directive(text: str, name: str) -> str:
    found = re.search(rf"^\s*{name}\s+([^;]+);", text, re.MULTILINE)
    assert found, f"{NGINX.name} has no {name}"
    return found.group(1).strip()


def test_the_nginx_front_matches_the_gateway_defaults() -> None:
    """infrastructure/nginx/hybrid-inference.conf: the head timeout and the head and body sizes are the gateway's
    defaults (a request nginx passes is one the gateway accepts), SSE is not buffered, the client address is
    forwarded, and nginx drops an upstream connection before the gateway's keep-alive would."""
    text = NGINX.read_text()
    defaults = Settings.from_env({})
    assert directive(text, "client_header_timeout") == f"{defaults.server.head_timeout:g}s"
    count, size = directive(text, "large_client_header_buffers").split()
    assert int(count) * int(size.removesuffix("k")) * 1024 == defaults.max_header_bytes
    assert directive(text, "client_max_body_size") == f"{defaults.max_body_bytes // 2**20}m"
    assert directive(text, "proxy_buffering") == "off"
    assert directive(text, "proxy_set_header X-Forwarded-For") == "$proxy_add_x_forwarded_for"
    upstream = text.split("upstream hybrid_inference", 1)[1].split("}", 1)[0]
    assert float(directive(upstream, "keepalive_timeout").removesuffix("s")) < defaults.server.keepalive_timeout


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_front_config(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {NGINX};\n}}\n"
    )
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
