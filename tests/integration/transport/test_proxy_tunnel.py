"""Forward proxies, through a real proxy on loopback: absolute-form http, and CONNECT tunnels verified end to end."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from routing.errors import UpstreamError
from routing.upstream.http1 import ConnectError, Pool
from routing.upstream.proxy import Proxies
from routing.upstream.transport import HttpTransport
from tests.support.proxy import ForwardProxy

from .conftest import RawServer, ok, tls_server

USER, PASSWORD = "gw-user", "pr0xy-s3cret"


def via(proxy: ForwardProxy, *, auth: bool = True, no_proxy: str = "") -> Proxies:
    creds = f"{USER}:{PASSWORD}@" if auth else ""
    url = f"http://{creds}127.0.0.1:{proxy.port}"
    return Proxies.from_env({"http_proxy": url, "https_proxy": url, "no_proxy": no_proxy})


def named(url: str) -> str:
    """The same URL by a name only the test proxy resolves (loopback targets never take a proxy)."""
    return url.replace("127.0.0.1", "upstream.test").replace("localhost", "upstream.test")


async def post(pool: Pool, url: str) -> tuple[int, bytes]:
    resp = await pool.request("POST", url, {"X-Test": "1"}, b'{"a": 1}', connect_timeout=2, total_timeout=5)
    body = await resp.read()
    resp.release()
    return resp.status, body


async def test_http_goes_to_the_proxy_in_absolute_form_with_basic_auth(serve) -> None:
    raw = await serve(lambda req: ok(b"via proxy"))
    async with ForwardProxy(credentials=(USER, PASSWORD)) as proxy:
        pool = Pool(proxies=via(proxy))
        assert await post(pool, named(raw.url)) == (200, b"via proxy")
        assert await post(pool, named(raw.url)) == (200, b"via proxy")
        await pool.close()
    first = proxy.seen[0]
    port = raw.url.split(":")[2].split("/")[0]
    assert (first.method, first.target) == ("POST", f"http://upstream.test:{port}/v1/chat/completions?x=1")
    assert first.authorization == "Basic Z3ctdXNlcjpwcjB4eS1zM2NyZXQ="  # base64("gw-user:pr0xy-s3cret")
    assert first.headers["host"] == f"upstream.test:{port}" and first.headers["x-test"] == "1"
    assert len(proxy.seen) == 2 and proxy.connections == 1  # the connection to the proxy is kept alive
    assert raw.requests[0].startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert b"proxy-authorization" not in raw.requests[0].lower()  # the proxy took its own header off


async def test_https_goes_through_a_connect_tunnel_and_verifies_the_target(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    raw = RawServer(lambda req: ok(b"secure via tunnel"))
    server, port = await tls_server(raw, certificate)
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    async with ForwardProxy(credentials=(USER, PASSWORD)) as proxy:
        pool = Pool(ssl_context=trusting, proxies=via(proxy))
        assert await post(pool, f"https://upstream.test:{port}/v1/x") == (200, b"secure via tunnel")
        assert await post(pool, f"https://upstream.test:{port}/v1/x") == (200, b"secure via tunnel")
        await pool.close()
        connect = proxy.seen[0]
        assert (connect.method, connect.target) == ("CONNECT", f"upstream.test:{port}")
        assert connect.authorization is not None and connect.authorization.startswith("Basic ")
        assert len(proxy.seen) == 1  # one tunnel carried both requests; the proxy saw none of them
        assert raw.requests[0].startswith(b"POST /v1/x HTTP/1.1\r\n") and raw.connections == 1
        assert b"Proxy-Authorization" not in raw.requests[0]  # credentials went to the proxy, never the target

        untrusting = Pool(proxies=via(proxy))  # the system store does not know the self-signed certificate
        with pytest.raises(ConnectError, match="TLS handshake failed"):
            await post(untrusting, f"https://upstream.test:{port}/v1/x")
        wrong_name = Pool(ssl_context=trusting, proxies=via(proxy))  # the certificate does not name other.test
        with pytest.raises(ConnectError, match="TLS handshake failed"):
            await post(wrong_name, f"https://other.test:{port}/v1/x")
    server.close()


async def test_a_refused_connect_names_the_status_and_never_the_credentials(certificate: tuple[Path, Path]) -> None:
    raw = RawServer(lambda req: ok(b"unreachable"))
    server, port = await tls_server(raw, certificate)
    async with ForwardProxy(credentials=(USER, "another-password")) as proxy:
        pool = Pool(proxies=via(proxy))
        with pytest.raises(ConnectError) as info:
            await post(pool, f"https://upstream.test:{port}/v1/x")
        await pool.close()
    message = str(info.value)
    assert message == f"proxy 127.0.0.1:{proxy.port} answered CONNECT with HTTP 407"
    assert PASSWORD not in message and USER not in message
    assert raw.connections == 0
    server.close()


async def test_no_proxy_hosts_and_loopback_go_direct(serve) -> None:
    raw = await serve(lambda req: ok(b"direct"))
    async with ForwardProxy() as proxy:
        pool = Pool(proxies=via(proxy, auth=False, no_proxy="example.invalid,.test"))
        assert await post(pool, raw.url) == (200, b"direct")  # loopback: never proxied (a local vLLM)
        with pytest.raises(ConnectError):  # NO_PROXY: dialled directly, and only the proxy knows this name
            await post(pool, named(raw.url))
        await pool.close()
    assert proxy.seen == [] and proxy.connections == 0
    assert raw.requests[0].startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")


async def test_a_proxy_that_is_down_is_a_connect_error_naming_it(serve) -> None:
    raw = await serve(lambda req: ok(b"x"))
    async with ForwardProxy() as proxy:
        proxies = via(proxy, auth=False)
    pool = Pool(proxies=proxies)
    with pytest.raises(ConnectError, match=f"^proxy 127.0.0.1:{proxy.port}: "):
        await post(pool, named(raw.url))
    await pool.close()


async def test_side_requests_of_the_transport_take_the_proxy_too(serve) -> None:
    raw = await serve(lambda req: ok(b"probe body"))
    async with ForwardProxy(credentials=(USER, PASSWORD)) as proxy:
        transport = HttpTransport(proxies=via(proxy))
        await transport.start()
        try:
            status, _, body = await transport.get(named(raw.url), {}, 5, 1000)
            assert (status, body) == (200, b"probe body")
        finally:
            await transport.close()
        assert [s.method for s in proxy.seen] == ["GET"]
    async with ForwardProxy(credentials=(USER, PASSWORD)) as proxy:
        proxies = via(proxy)
    transport = HttpTransport(proxies=proxies)
    await transport.start()
    try:
        with pytest.raises(UpstreamError) as info:
            await transport.get(named(raw.url), {}, 5, 1000)
    finally:
        await transport.close()
    assert info.value.kind == "connect" and PASSWORD not in info.value.message
