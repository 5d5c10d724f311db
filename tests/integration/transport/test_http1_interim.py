"""Interim (1xx) responses and bytes after a response: each answer belongs to the request it was sent for.

Audit issue 15, item 1: the client took a 103 or 100 for the final response, read it as an empty body and pooled
the connection as clean, so the real answer went to whoever sent the next request on it; two responses in one read
were merged into one.
"""

from __future__ import annotations

import asyncio

import pytest

from routing.upstream.http1 import HttpError, LimitExceeded, Pool
from tests.support.hostile import early_hints, head, response

from .conftest import RawServer


def by_body(first: list[bytes | float], second: list[bytes | float]):  # type: ignore[no-untyped-def]
    """Answers the request whose body says "first" with `first`, and any other with `second`."""
    return lambda request: first if request.endswith(b'"first"') else second


async def post(pool: Pool, url: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    resp = await asyncio.wait_for(pool.request("POST", url, {}, body, connect_timeout=2, total_timeout=5), 5)
    data = await asyncio.wait_for(resp.read(), 5)
    resp.release()
    return resp.status, data, dict(resp.headers)


async def test_an_early_hints_response_is_skipped_and_the_final_one_read(serve) -> None:
    """h11/httpcore and aiohttp skip every 1xx but 101 and return the final response; nginx before 1.29 took an
    upstream 103 for the final answer (the bug reported as nuxt/framework#8306), 1.29 passes it on and waits."""
    # the 103 and its final response in separate reads, the upstream thinking in between
    raw: RawServer = await serve(by_body([early_hints(), 0.2, response(b"A")], [response(b"B")]))
    pool = Pool()
    assert (await post(pool, raw.url, b'"first"'))[:2] == (200, b"A")
    assert (await post(pool, raw.url, b'"second"'))[:2] == (200, b"B")
    assert raw.connections == 1  # the exchange ended cleanly, so reusing the connection was safe
    await pool.close()


async def test_several_interim_responses_in_one_read_are_skipped_without_mixing_their_headers(serve) -> None:
    """RFC 9110 §15.2: a client must accept any number of 1xx before the final response (h11 reports each as an
    InformationalResponse, aiohttp loops until a non-1xx); their fields are not the final response's fields."""
    interims = head(100) + head(102, "X-Progress: 50%") + early_hints("</a.js>; rel=preload")
    raw = await serve(lambda req: [interims + response(b"A", "Content-Type: application/json")])
    pool = Pool()
    status, body, headers = await post(pool, raw.url, b"{}")
    assert (status, body) == (200, b"A")
    assert headers == {"content-length": "1", "content-type": "application/json"}
    await pool.close()


async def test_a_second_response_in_the_same_read_is_not_read_as_part_of_the_first(serve) -> None:
    """aiohttp never reuses a connection holding bytes past its response (ResponseHandler.should_close: `_tail`);
    httpcore closes a pooled connection that turns readable while idle. The stray answer here must reach no one."""
    stray = response(b"STRAY")
    raw = await serve(by_body([response(b"A") + stray], [response(b"B")]))
    pool = Pool()
    status, body, headers = await post(pool, raw.url, b'"first"')
    assert (status, body, headers["content-length"]) == (200, b"A", "1")
    assert (await post(pool, raw.url, b'"second"'))[1] == b"B"
    assert raw.connections == 2  # the connection that carried the stray bytes was closed, not pooled
    await pool.close()


async def test_bytes_arriving_after_the_response_ended_close_its_connection(serve) -> None:
    """The same stray response in a later read, while the caller still holds the response: it is not pooled."""
    raw = await serve(by_body([response(b"A"), response(b"STRAY")], [response(b"B")]))
    pool = Pool()
    resp = await asyncio.wait_for(pool.request("POST", raw.url, {}, b'"first"', connect_timeout=2, total_timeout=5), 5)
    assert await asyncio.wait_for(resp.read(), 5) == b"A"
    await asyncio.sleep(0.1)  # the stray bytes arrive before the caller lets go
    resp.release()
    assert (await post(pool, raw.url, b'"second"'))[1] == b"B"
    assert raw.connections == 2
    await pool.close()


async def test_switching_protocols_is_not_skipped_but_refused(serve) -> None:
    """101 is the one 1xx h11/httpcore and aiohttp do not skip: they hand it to a caller that asked to upgrade. The
    gateway never asks, so the request fails at the head, before anything is read as a body."""
    raw = await serve(lambda req: [head(101, "Upgrade: websocket", "Connection: Upgrade") + response(b"A")])
    with pytest.raises(HttpError, match=r"upstream switched protocols \(HTTP 101\)"):
        await asyncio.wait_for(Pool().request("POST", raw.url, {}, b"{}", connect_timeout=2, total_timeout=5), 5)


async def test_a_1xx_that_carries_a_body_is_refused(serve) -> None:
    """A 1xx ends at its blank line (RFC 9110 §15.2); llhttp still reads a Content-Length body for 104-199, so such
    an answer is refused as malformed rather than parsed two ways (h11 would take "abc" as the next status line and
    fail the same)."""
    raw = await serve(lambda req: [head(199, "Content-Length: 3") + b"abc" + response(b"A")])
    with pytest.raises(HttpError, match=r"interim response \(HTTP 199\) with a body"):
        await asyncio.wait_for(Pool().request("POST", raw.url, {}, b"{}", connect_timeout=2, total_timeout=5), 5)


async def test_endless_interim_responses_count_against_the_header_cap(serve) -> None:
    """Any number of 1xx is allowed, but not an endless stream of them: their heads share the head's byte cap (h11
    bounds each event by max_incomplete_event_size, aiohttp each head by its line and field limits)."""
    raw = await serve(lambda req: [early_hints() * 50 for _ in range(40)])  # 40 reads of 50 hints, 120 KB in all
    pool = Pool(max_header_bytes=16 * 1024)
    with pytest.raises(LimitExceeded, match="max_header_bytes"):
        await asyncio.wait_for(pool.request("POST", raw.url, {}, b"{}", connect_timeout=2, total_timeout=5), 5)
    await pool.close()
