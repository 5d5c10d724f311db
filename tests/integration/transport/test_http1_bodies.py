"""Bodies the caps did not reach: an error body inflated whole, a body trickling in, key fragments in error text.

Audit issue 15, items 3 and 16.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
import zlib
from dataclasses import replace

import pytest

from adapters.kinds import kind_spec
from adapters.registry import adapter_for
from routing.config.schema import DeploymentConfig, Timeouts
from routing.errors import UpstreamError
from routing.upstream.http1 import Pool
from routing.upstream.transport import HttpTransport
from tests.support.hostile import chat_completion, gzip_bomb, head, response

from .conftest import RawServer, ok

KEY = "sk-proj-Zq4LmN8pQr2sT6vX9yB1cD7e"


def openai(raw: RawServer, **kw: object) -> DeploymentConfig:
    return DeploymentConfig(
        name="d", model_id="m", kind="openai", provider="openai", base_url=raw.url.split("/v1")[0] + "/v1",
        provider_model_id="x", weight=1, api_key=KEY, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def call(transport: HttpTransport, dep: DeploymentConfig) -> dict:  # type: ignore[type-arg]
    spec = kind_spec(dep.kind)
    assert spec is not None
    adapter = adapter_for(spec)
    request = adapter.build(dep, {"messages": [{"role": "user", "content": "hi"}]}, stream=False)
    resp = await transport.open(dep, request, adapter, 30)
    return await transport.read_json(dep, resp, adapter, request)


@pytest.fixture
async def transport():  # type: ignore[no-untyped-def]
    transport = HttpTransport()
    await transport.start()
    yield transport
    await transport.close()


async def test_an_error_body_is_inflated_no_further_than_the_part_kept(serve, transport: HttpTransport) -> None:
    """aiohttp 3.14 inflates in bounded steps as the reader asks (DeflateBuffer max_decompress_size); httpx
    inflates each chunk whole. An error body is read for its message only: 64 KiB of it, decoded, are kept, and no
    more than that is ever inflated."""
    bomb = gzip_bomb(64)  # 64 MiB of zeros in about 64 KB: one or two socket reads
    raw = await serve(lambda req: [response(bomb, "Content-Encoding: gzip", status=500)])
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamError) as info:
            await asyncio.wait_for(call(transport, openai(raw)), 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.value.kind, info.value.upstream_status) == ("status", 500)
    assert peak < 2 << 20, f"peak {peak >> 10} KiB while reading the start of a 64 MiB error body"


async def test_the_kept_start_of_an_error_body_is_exactly_the_cap(serve) -> None:
    """What `read` returns of an error body is its decoded start, cut at max_error_body_bytes."""
    text = b'{"error": {"message": "' + b"m" * 100_000 + b'"}}'
    raw = await serve(lambda req: [response(zlib.compress(text), "Content-Encoding: deflate", status=503)])
    pool = Pool(max_error_body_bytes=1000)
    resp = await pool.request("POST", raw.url, {}, b"{}", connect_timeout=2, total_timeout=5)
    assert await asyncio.wait_for(resp.read(), 5) == text[:1000]
    resp.close()
    await pool.close()


async def test_a_trickling_body_is_cut_at_the_idle_gap(serve, transport: HttpTransport) -> None:
    """Streams already end after `timeouts.idle` without a byte; a whole body read now does too, as aiohttp's
    sock_read and httpx's read timeout bound each read, instead of holding the call until `timeouts.total`."""
    body = chat_completion("slow")
    trickle: list[bytes | float] = [head(200, f"Content-Length: {len(body)}")]
    for byte in body:
        trickle += [bytes([byte]), 0.5]
    raw = await serve(lambda req: trickle)
    dep = openai(raw, timeouts=Timeouts(idle=0.2, total=60))
    began = time.perf_counter()
    with pytest.raises(UpstreamError) as info:
        await asyncio.wait_for(call(transport, dep), 10)
    assert (info.value.kind, info.value.message) == ("timeout", "d: body stalled for 0.2s")
    assert time.perf_counter() - began < 3


async def test_a_body_that_keeps_arriving_within_the_idle_gap_is_read_whole(serve, transport: HttpTransport) -> None:
    """The idle gap is between reads, not a budget for the whole body."""
    body = chat_completion("steady")
    pieces: list[bytes | float] = [head(200, f"Content-Length: {len(body)}")]
    for i in range(0, len(body), 40):
        pieces += [body[i : i + 40], 0.05]
    raw = await serve(lambda req: pieces)
    reply = await asyncio.wait_for(call(transport, openai(raw, timeouts=Timeouts(idle=0.5, total=60))), 10)
    assert reply["choices"][0]["message"]["content"] == "steady"


async def test_a_response_paused_at_its_end_is_pooled_reading_again(serve) -> None:
    """Flow control paused the socket at 1 MiB buffered, exactly where the body ended; released unread, the
    connection must go back to the pool reading, or its next exchange waits for nothing (httpcore reads only when
    asked, and closes a connection released with its body unread)."""
    big = b"z" * ((1 << 20) + 1)
    raw = await serve(lambda req: ok(big) if req.endswith(b'"big"') else ok(b"small"))
    pool = Pool()
    resp = await pool.request("POST", raw.url, {}, b'"big"', connect_timeout=2, total_timeout=5)
    await asyncio.sleep(0.2)  # all of it arrives and is buffered; nothing reads it
    resp.release()
    resp = await asyncio.wait_for(pool.request("POST", raw.url, {}, b'"next"', connect_timeout=2, total_timeout=5), 2)
    assert await asyncio.wait_for(resp.read(), 2) == b"small"
    resp.release()
    assert raw.connections == 1
    await pool.close()


async def test_a_fragment_of_the_key_in_upstream_error_text_is_masked(serve, transport: HttpTransport) -> None:
    """OpenAI's own 401 quotes a key's first and last four characters; an upstream that quotes a longer run of them
    must not pass it on. httpx and aiohttp hand upstream text over as it came: masking is the gateway's job."""
    message = f"key ending in {KEY[-12:]} was revoked (first part {KEY[3:14]})"
    body = b'{"error": {"message": "' + message.encode() + b'", "type": "invalid_request_error"}}'
    raw = await serve(lambda req: [response(body, status=401)])
    dep = replace(openai(raw), name="keyed")
    with pytest.raises(UpstreamError) as info:
        await call(transport, dep)
    text = info.value.message
    assert KEY[-12:] not in text and KEY[3:14] not in text and KEY[-8:] not in text
    assert text == "keyed: HTTP 401: key ending in *** was revoked (first part ***)"
