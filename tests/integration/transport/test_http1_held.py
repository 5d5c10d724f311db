"""What the audit found sound, kept that way: no redirects, no upgrades, no ambiguous framing, HTTP/1.0 bodies read
to the close, no control characters in response header values."""

from __future__ import annotations

import pytest

from adapters.kinds import kind_spec
from adapters.registry import adapter_for
from routing.config.schema import DeploymentConfig
from routing.errors import UpstreamError
from routing.upstream.http1 import HttpError, Pool
from routing.upstream.transport import HttpTransport
from tests.support.hostile import head, response

from .conftest import CLOSE, RawServer, ok


async def post(pool: Pool, url: str):  # type: ignore[no-untyped-def]
    return await pool.request("POST", url, {}, b"{}", connect_timeout=2, total_timeout=5)


async def test_a_redirect_is_returned_not_followed(serve) -> None:
    """httpx follows no redirect unless follow_redirects=True, nginx and Envoy pass a 3xx to the client (Envoy
    follows only with an internal_redirect_policy); aiohttp follows by default. A key never goes to a Location."""
    elsewhere: RawServer = await serve(lambda req: ok(b"followed"))
    raw = await serve(lambda req: [response(b"", f"Location: {elsewhere.url}", status=302)])
    pool = Pool()
    resp = await post(pool, raw.url)
    assert (resp.status, resp.headers["location"]) == (302, elsewhere.url)
    resp.release()
    assert elsewhere.requests == []
    await pool.close()


async def test_switching_protocols_is_refused_and_the_connection_dropped(serve) -> None:
    """httpcore and aiohttp hand a 101 to their caller, for an upgrade it asked for; the gateway never asks, so a 101
    is a failed attempt and its connection is not reused."""
    upgrade = head(101, "Upgrade: websocket", "Connection: Upgrade")
    raw = await serve(lambda req: [upgrade] if b"upgrade-me" in req else ok(b'{"choices": []}'))
    dep = DeploymentConfig(
        name="d", model_id="m", kind="vllm", provider="local", base_url=raw.url.split("/v1")[0] + "/v1",
        provider_model_id="x", weight=1,
    )  # fmt: skip
    spec = kind_spec("vllm")
    assert spec is not None
    adapter = adapter_for(spec)
    transport = HttpTransport()
    await transport.start()
    try:
        request = adapter.build(dep, {"messages": [{"role": "user", "content": "upgrade-me"}]}, stream=False)
        with pytest.raises(UpstreamError):
            await transport.read_json(dep, await transport.open(dep, request, adapter, 5), adapter, request)
        request = adapter.build(dep, {"messages": []}, stream=False)
        await transport.read_json(dep, await transport.open(dep, request, adapter, 5), adapter, request)
        assert raw.connections == 2  # the upgraded connection was never reused
    finally:
        await transport.close()


async def test_content_length_with_chunked_is_refused(serve) -> None:
    """RFC 9112 §6.3: a message with both "ought to be handled as an error" (a smuggling sign); nginx answers 502
    ("upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time"), aiohttp's llhttp refuses
    it; h11 lets Transfer-Encoding win."""
    both = head(200, "Content-Length: 3", "Transfer-Encoding: chunked") + b"3\r\nabc\r\n0\r\n\r\n"
    raw = await serve(lambda req: [both])
    with pytest.raises(HttpError, match="malformed HTTP response"):
        await post(Pool(), raw.url)


async def test_an_http_1_0_body_without_length_is_read_to_the_close(serve) -> None:
    """RFC 9112 §6.3 item 8: without Content-Length or chunked, the body ends when the connection does; h11, aiohttp,
    nginx and Envoy read it so, and none reuses an HTTP/1.0 connection that did not ask for keep-alive."""
    body = b'{"choices": []}' * 1000
    raw = await serve(lambda req: [b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n", body, CLOSE])
    pool = Pool()
    for _ in range(2):
        resp = await post(pool, raw.url)
        assert await resp.read() == body
        resp.release()
    raw.handler = lambda req: [b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"]  # a length, still no keep-alive
    resp = await post(pool, raw.url)
    assert await resp.read() == b"ok"
    resp.release()
    assert raw.connections == 3
    await pool.close()


@pytest.mark.parametrize("value", [b"a\rb", b"a\x00b", b"a\x01b"])
async def test_control_characters_in_a_response_header_value_are_refused(serve, value: bytes) -> None:
    """RFC 9110 §5.5: CR, LF and NUL are never allowed in a field value and a recipient must reject them or replace
    them with SP; h11 and llhttp (aiohttp, httptools) reject, nginx answers 502 ("upstream sent invalid header")."""
    raw = await serve(lambda req: [b"HTTP/1.1 200 OK\r\nX-Bad: " + value + b"\r\nContent-Length: 0\r\n\r\n"])
    with pytest.raises(HttpError, match="malformed HTTP response"):
        await post(Pool(), raw.url)
