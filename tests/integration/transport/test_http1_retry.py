"""The keep-alive race: a reused connection found dead before any response byte is retried once, on a new one."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

from routing.upstream.http1 import HttpError, Pool

from .conftest import CLOSE, ok


def script(*answers: list[bytes]):  # type: ignore[no-untyped-def]
    """A handler giving each request in turn the next answer; the last one repeats."""
    queue = list(answers)

    def handler(request: bytes) -> list[bytes]:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


async def post(pool: Pool, url: str) -> bytes:
    resp = await pool.request("POST", url, {}, b"{}", connect_timeout=2, total_timeout=5)
    body = await resp.read()
    resp.release()
    return body


async def test_a_pooled_connection_closed_as_we_send_is_retried_once_on_a_new_one(serve) -> None:
    # the second request finds its keep-alive connection closed by the server without a byte of answer
    raw = await serve(script(ok(b"first"), [CLOSE], ok(b"again")))
    pool = Pool()
    assert await post(pool, raw.url) == b"first"
    assert await post(pool, raw.url) == b"again"
    assert raw.connections == 2 and len(raw.requests) == 3  # sent twice: once on the dead one, once fresh
    await pool.close()


async def test_a_new_connection_that_fails_is_not_retried(serve) -> None:
    raw = await serve(lambda req: [CLOSE])
    pool = Pool()
    with pytest.raises(HttpError, match="connection lost"):
        await post(pool, raw.url)
    assert raw.connections == 1 and len(raw.requests) == 1
    await pool.close()


async def test_no_retry_once_a_response_byte_arrived(serve) -> None:
    raw = await serve(script(ok(b"first"), [b"HTTP/1.1 200 OK\r\nContent-", CLOSE], ok(b"never")))
    pool = Pool()
    assert await post(pool, raw.url) == b"first"
    with pytest.raises(HttpError):
        await post(pool, raw.url)
    assert len(raw.requests) == 2
    await pool.close()


async def test_only_one_retry_when_the_fresh_connection_dies_too(serve) -> None:
    raw = await serve(script(ok(b"first"), [CLOSE]))
    pool = Pool()
    assert await post(pool, raw.url) == b"first"
    with pytest.raises(HttpError, match="connection lost"):
        await post(pool, raw.url)
    assert raw.connections == 2 and len(raw.requests) == 3
    await pool.close()


async def test_dual_stack_hosts_are_dialled_with_happy_eyeballs(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = await serve(lambda req: ok(b"x"))
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    real = loop.create_connection

    async def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return await real(*args, **kwargs)

    monkeypatch.setattr(loop, "create_connection", spy)
    pool = Pool()
    assert await post(pool, raw.url) == b"x"
    assert seen and seen[0]["happy_eyeballs_delay"] == 0.25 and seen[0]["interleave"] == 1
    await pool.close()


async def test_a_request_cancelled_mid_dial_leaves_no_socket_open(serve) -> None:
    # A client gone while its call dials cancels the dial at some point of the happy-eyeballs race; at the moment
    # the race has connected, Python 3.11's own drops the socket unclosed (a descriptor leaked per disconnect).
    raw = await serve(lambda req: ok(b"x"))
    pool = Pool()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for spins in range(10):
            for _ in range(8):
                call = asyncio.ensure_future(pool.request("GET", raw.url, {}, None, connect_timeout=2, total_timeout=5))
                for _ in range(spins):
                    await asyncio.sleep(0)
                call.cancel()
                try:
                    (await call).close()
                except asyncio.CancelledError:
                    pass
        await asyncio.sleep(0.05)  # dials left to finish on their own do, and close what they connected
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert await post(pool, raw.url) == b"x"  # and the pool's slots all came back
    await pool.close()
