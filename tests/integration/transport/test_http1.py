"""The upstream HTTP/1.1 client against raw loopback servers that answer with exactly the bytes a test gives."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from pathlib import Path

import pytest

from routing.upstream import http1_response
from routing.upstream.http1 import ConnectError, HttpError, Pool

from .conftest import CLOSE, RawServer, ok


async def post(pool: Pool, url: str, body: bytes = b'{"a": 1}') -> tuple[int, bytes, dict[str, str]]:
    resp = await pool.request(
        "POST", url, {"Content-Type": "application/json"}, body, connect_timeout=2, total_timeout=5
    )
    data = await resp.read()
    resp.release()
    return resp.status, data, dict(resp.headers)


async def test_request_line_headers_and_body_reach_the_server(serve) -> None:
    raw = await serve(lambda req: ok(b"{}"))
    pool = Pool()
    assert (await post(pool, raw.url, b"hello"))[:2] == (200, b"{}")
    request = raw.requests[0]
    assert request.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{raw.server.sockets[0].getsockname()[1]}\r\n".encode() in request
    assert b"Content-Length: 5\r\n" in request and request.endswith(b"\r\n\r\nhello")
    await pool.close()


async def test_keep_alive_reuses_one_connection(serve) -> None:
    raw = await serve(lambda req: ok(b"x"))
    pool = Pool()
    for _ in range(5):
        assert (await post(pool, raw.url))[1] == b"x"
    assert raw.connections == 1
    await pool.close()


async def test_chunked_body_arrives_piece_by_piece(serve) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
    raw = await serve(lambda req: [head, b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"])
    pool = Pool()
    resp = await pool.request("POST", raw.url, {}, b"{}", connect_timeout=2, total_timeout=5)
    assert resp.headers.get("content-type") == resp.headers.get("Content-Type") == "text/event-stream"
    pieces = []
    while not resp.at_eof():
        data = await resp.readany()
        if data:
            pieces.append(data)
    resp.release()
    assert b"".join(pieces) == b"hello world"
    assert len(pieces) >= 2  # relayed as it came, not gathered to the end
    assert (await post(pool, raw.url))[0] == 200 and raw.connections == 1  # and the connection was reused
    await pool.close()


async def test_body_delimited_by_close_is_complete_and_not_pooled(serve) -> None:
    raw = await serve(lambda req: [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\nall", CLOSE])
    pool = Pool()
    assert (await post(pool, raw.url))[1] == b"all"
    assert (await post(pool, raw.url))[1] == b"all"
    assert raw.connections == 2
    await pool.close()


async def test_gzip_is_decoded(serve) -> None:
    body = gzip.compress(b'{"ok": true}')
    raw = await serve(lambda req: ok(body, "Content-Encoding: gzip"))
    pool = Pool()
    assert (await post(pool, raw.url))[1] == b'{"ok": true}'
    await pool.close()


async def test_refused_connection_is_a_connect_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectError):
        await Pool().request("POST", f"http://127.0.0.1:{port}/x", {}, b"", connect_timeout=2, total_timeout=5)


async def test_malformed_response_is_an_http_error(serve) -> None:
    raw = await serve(lambda req: [b"SPAM 200 nope\r\n\r\n"])
    with pytest.raises(HttpError):
        await Pool().request("POST", raw.url, {}, b"", connect_timeout=2, total_timeout=5)


async def test_body_cut_short_raises_on_read_and_the_connection_is_dropped(serve) -> None:
    raw = await serve(lambda req: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", CLOSE])
    pool = Pool()
    resp = await pool.request("POST", raw.url, {}, b"", connect_timeout=2, total_timeout=5)
    assert await resp.readany() == b"partial"
    with pytest.raises(HttpError, match="connection lost"):
        await asyncio.wait_for(resp.read(), 5)
    resp.release()  # not reusable: the next request opens a new connection
    with pytest.raises(HttpError):
        await post(pool, raw.url)
    assert raw.connections == 2
    await pool.close()


async def test_connection_closed_before_any_response_is_an_http_error(serve) -> None:
    raw = await serve(lambda req: [CLOSE])
    with pytest.raises(HttpError, match="connection lost"):
        await Pool().request("POST", raw.url, {}, b"", connect_timeout=2, total_timeout=5)


async def test_stale_idle_connection_is_not_reused(serve) -> None:
    raw = await serve(lambda req: ok(b"x"))
    pool = Pool(keepalive=0.05)
    await post(pool, raw.url)
    await asyncio.sleep(0.1)
    await post(pool, raw.url)
    assert raw.connections == 2
    await pool.close()


async def test_server_closing_an_idle_connection_is_noticed(serve) -> None:
    raw = await serve(lambda req: ok(b"x", "Connection: close"))
    pool = Pool()
    await post(pool, raw.url)
    await post(pool, raw.url)  # "Connection: close" answers are never pooled
    assert raw.connections == 2
    await pool.close()


async def test_pool_limit_makes_requests_wait_for_a_free_connection(serve) -> None:
    raw = await serve(lambda req: ok(b"x"))
    pool = Pool(limit=1)
    first = await pool.request("POST", raw.url, {}, b"", connect_timeout=2, total_timeout=5)
    second = asyncio.create_task(post(pool, raw.url))
    await asyncio.sleep(0.05)
    assert not second.done()  # waiting for the one connection
    await first.read()
    first.release()
    assert (await asyncio.wait_for(second, 5))[1] == b"x"
    assert raw.connections == 1
    await pool.close()


async def test_header_values_with_line_breaks_are_refused(serve) -> None:
    raw = await serve(lambda req: ok(b"x"))
    with pytest.raises(HttpError):
        await Pool().request("POST", raw.url, {"X-Bad": "a\r\nInjected: 1"}, b"", connect_timeout=2, total_timeout=5)
    assert raw.requests == []


async def test_https_with_certificate_verification(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    raw = RawServer(lambda req: ok(b"secure"))
    server = await asyncio.start_server(raw.serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    url = f"https://localhost:{port}/v1/x"

    with pytest.raises(ConnectError, match="TLS"):  # the default context does not trust a self-signed cert
        await Pool().request("POST", url, {}, b"", connect_timeout=2, total_timeout=5)
    trusting = ssl.create_default_context(cafile=str(cert))
    pool = Pool(ssl_context=trusting)
    assert (await post(pool, url))[1] == b"secure"
    assert b"Host: localhost:%d\r\n" % port in raw.requests[-1]
    await pool.close()
    server.close()


async def test_a_response_released_before_its_end_is_drained_and_pooled(serve) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = await serve(lambda req: [head + b"5\r\nusage\r\n", b"6\r\n[DONE]\r\n0\r\n\r\n"])
    pool = Pool()
    resp = await pool.request("POST", raw.url, {}, b"{}", connect_timeout=2, total_timeout=5)
    assert await resp.readany() == b"usage"
    resp.release()  # the caller has what it needs; the tail is still on its way
    await asyncio.sleep(0.1)
    assert (await post(pool, raw.url))[0] == 200
    assert raw.connections == 1
    await pool.close()


async def test_a_response_that_never_ends_is_closed_after_the_linger(serve, monkeypatch) -> None:
    monkeypatch.setattr(http1_response, "_LINGER_S", 0.05)
    raw = await serve(lambda req: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"])
    pool = Pool()
    resp = await pool.request("POST", raw.url, {}, b"{}", connect_timeout=2, total_timeout=5)
    assert await resp.readany() == b"first"
    resp.release()
    assert pool.lingering
    await asyncio.sleep(0.15)
    assert not pool.lingering
    raw.handler = lambda req: ok(b"x")
    assert (await post(pool, raw.url))[1] == b"x"
    assert raw.connections == 2
    await pool.close()
