"""The client's caps on what a response may make it hold: header block, whole body, decoded output of one read."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
import zlib

import pytest

from adapters.kinds import kind_spec
from adapters.registry import adapter_for
from routing.config.schema import DeploymentConfig
from routing.errors import UpstreamError
from routing.upstream.http1 import LimitExceeded, Pool
from routing.upstream.transport import HttpTransport
from tests.support.hostile import gzip_bomb

from .conftest import RawServer, ok


async def request(pool: Pool, url: str):  # type: ignore[no-untyped-def]
    return await pool.request("POST", url, {}, b"{}", connect_timeout=2, total_timeout=10)


async def test_a_header_block_that_never_ends_is_cut_at_the_cap(serve) -> None:
    endless = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Filler: " + b"a" * 1000 + b"\r\n"] * 100
    raw = await serve(lambda req: endless)
    pool = Pool(max_header_bytes=16 * 1024)
    with pytest.raises(LimitExceeded, match=r"response headers exceed 16384 bytes \(max_header_bytes\)"):
        await request(pool, raw.url)
    await pool.close()


async def test_one_huge_header_in_one_read_is_refused_by_the_default_cap(serve) -> None:
    raw = await serve(lambda req: [b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 100_000 + b"\r\nContent-Length: 0\r\n\r\n"])
    pool = Pool()
    with pytest.raises(LimitExceeded, match="65536 bytes"):
        await request(pool, raw.url)
    await pool.close()


async def test_body_bytes_in_the_same_read_as_the_headers_do_not_count_as_header(serve) -> None:
    body = b"x" * 200_000
    raw = await serve(lambda req: ok(body))  # head and body leave in one write
    pool = Pool(max_header_bytes=1024)
    resp = await request(pool, raw.url)
    assert await resp.read() == body
    resp.release()
    await pool.close()


async def test_a_body_over_the_cap_is_refused_and_its_connection_dropped(serve) -> None:
    raw = await serve(lambda req: ok(b"y" * 50_000))
    pool = Pool(max_body_bytes=10_000)
    resp = await request(pool, raw.url)
    with pytest.raises(LimitExceeded, match=r"response body exceeds 10000 bytes \(max_body_bytes\)"):
        await resp.read()
    resp.release()
    assert not pool.lingering  # not drained for reuse: closed
    resp = await request(pool, raw.url)
    resp.close()
    assert raw.connections == 2
    await pool.close()


async def test_a_body_under_the_cap_but_with_a_read_limit_is_fine(serve) -> None:
    raw = await serve(lambda req: ok(b"z" * 50_000))
    pool = Pool(max_body_bytes=10_000)
    resp = await request(pool, raw.url)
    assert len(await resp.read(1000)) == 1000  # an error body read with a limit never trips the cap
    resp.close()
    await pool.close()


async def test_a_gzip_bomb_is_refused_without_unpacking_it(serve) -> None:
    bomb = gzip_bomb(512)  # 512 MiB of zeros in about half a megabyte
    assert len(bomb) < 1 << 20
    raw = await serve(lambda req: ok(bomb, "Content-Encoding: gzip"))
    pool = Pool()
    tracemalloc.start()
    try:
        resp = await request(pool, raw.url)
        with pytest.raises(LimitExceeded, match=r"\(max_decoded_read_bytes\)"):
            await asyncio.wait_for(resp.read(), 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    resp.release()
    assert peak < 64 << 20, f"peak {peak >> 20} MiB while refusing a 512 MiB bomb"
    await pool.close()


async def test_a_streamed_bomb_fails_the_read_that_would_unpack_it(serve) -> None:
    bomb = gzip_bomb(64)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = await serve(lambda req: [head + b"%x\r\n" % len(bomb) + bomb + b"\r\n0\r\n\r\n"])
    pool = Pool(max_decoded_read_bytes=1 << 20)
    resp = await request(pool, raw.url)
    with pytest.raises(LimitExceeded, match=r"more than 1048576 bytes at once \(max_decoded_read_bytes\)"):
        while not resp.at_eof():
            await asyncio.wait_for(resp.readany(), 5)
    resp.close()
    await pool.close()


async def test_an_honest_compressed_body_larger_than_one_reads_cap_still_arrives(serve) -> None:
    text = os.urandom(3 << 19).hex().encode()  # 3 MiB that deflate only halves
    raw = await serve(lambda req: ok(zlib.compress(text), "Content-Encoding: deflate"))
    pool = Pool(max_decoded_read_bytes=1 << 20)  # one socket read (<= 256 KiB) decodes to about 512 KiB
    resp = await request(pool, raw.url)
    assert await resp.read() == text
    resp.release()
    await pool.close()


async def test_the_transport_names_the_cap_in_a_protocol_error(serve) -> None:
    raw: RawServer = await serve(lambda req: ok(b'{"choices": []}' + b" " * 5000))
    dep = DeploymentConfig(
        name="big", model_id="m", kind="vllm", provider="local", base_url=raw.url.split("/v1")[0] + "/v1",
        provider_model_id="x", weight=1,
    )  # fmt: skip
    spec = kind_spec("vllm")
    assert spec is not None
    adapter = adapter_for(spec)
    transport = HttpTransport(max_body_bytes=1000)
    await transport.start()
    try:
        request_ = adapter.build(dep, {"messages": []}, stream=False)
        resp = await transport.open(dep, request_, adapter, 10)
        with pytest.raises(UpstreamError) as info:
            await transport.read_json(dep, resp, adapter, request_)
        assert info.value.kind == "protocol"
        assert info.value.message == "big: response body exceeds 1000 bytes (max_body_bytes)"
        with pytest.raises(UpstreamError, match="max_body_bytes") as info:
            await transport.get(raw.url, {}, 5, 100_000)
        assert info.value.kind == "protocol"
    finally:
        await transport.close()
