"""Settling a token reservation to the best figure available: reported usage, else the reservation, else 0."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest

from routing.call import Call
from routing.config.schema import DeploymentConfig, ModelConfig
from routing.errors import UpstreamError
from routing.limits.admission import Admission, Guards, settled_tokens
from routing.limits.breaker import BreakerBoard
from routing.limits.ratelimit import InProcessRateLimiter, deployment_limit
from routing.stream import UpstreamStream, total_tokens

TPM = 1000
RESERVED = 100
DEP = DeploymentConfig("d", "m", "openai", "p", "http://d/v1", "x", 1.0, tpm=TPM)
MODEL = ModelConfig("m", "M", (DEP,))


def chunk(text: str = "", usage: dict[str, int] | None = None, finish: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    if usage is not None:
        out["usage"] = usage
    return out


async def admitted(guards: Guards) -> Admission:
    admission = await guards.admit(DEP, MODEL, RESERVED)
    assert isinstance(admission, Admission) and admission.reservation is not None
    return admission


async def used(guards: Guards) -> int:
    (state,) = await guards.limiter.peek([deployment_limit(DEP.key, 0, TPM)])
    return TPM - state.remaining_tokens


def guards() -> Guards:
    return Guards(BreakerBoard(), InProcessRateLimiter())


def test_settled_tokens_prefers_usage_then_the_reservation_and_releases_undelivered() -> None:
    assert settled_tokens(42, delivered=True) == 42
    assert settled_tokens(0, delivered=True) == 0  # a reported zero is a figure, not "no usage"
    assert settled_tokens(None, delivered=True) is None  # the reservation stands
    assert settled_tokens(None, delivered=False) == 0
    assert settled_tokens(42, delivered=False) == 0


def test_total_tokens_is_none_without_usage() -> None:
    call = Call("r", "m", stream=False)
    assert total_tokens(call) is None
    call.usage = {"prompt_tokens": 3, "completion_tokens": 4}
    assert total_tokens(call) == 7
    call.usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 9}
    assert total_tokens(call) == 9
    call.usage = {"completion_tokens": 0}
    assert total_tokens(call) == 0


@pytest.mark.parametrize(
    ("end", "kwargs", "expected"),
    [
        ("succeeded", {"tokens": 30}, 30),  # success with usage: settled to it
        ("succeeded", {"tokens": None}, RESERVED),  # success without usage: the reservation stands
        ("failed", {"error": UpstreamError("connect", "down")}, 0),  # failed before any byte: released
        ("abandoned", {}, 0),  # cancelled before any byte: released
        ("failed", {"error": UpstreamError("stream", "cut"), "delivered": True}, RESERVED),  # failed mid-stream
        ("failed", {"error": UpstreamError("stream", "cut"), "tokens": 55, "delivered": True}, 55),
        ("abandoned", {"delivered": True}, RESERVED),  # client went away mid-stream
    ],
)
async def test_an_admission_settles_to_the_best_figure(end: str, kwargs: dict[str, Any], expected: int) -> None:
    g = guards()
    admission = await admitted(g)
    assert await used(g) == RESERVED
    await getattr(g, end)(admission, **kwargs)
    assert await used(g) == expected


async def batches(*groups: list[dict[str, Any]], fail: bool = False) -> AsyncGenerator[list[dict[str, Any]]]:
    for group in groups:
        yield group
    if fail:
        raise UpstreamError("stream", "d: connection reset mid-stream")


async def stream_of(g: Guards, gen: AsyncGenerator[list[dict[str, Any]]], head: list[dict[str, Any]]) -> Any:
    call = Call("r", "m", stream=True)
    return UpstreamStream(DEP, head, gen, call, 0.0, g, await admitted(g)), call


async def test_stream_without_usage_keeps_the_reservation() -> None:
    g = guards()
    stream, call = await stream_of(g, batches([chunk(" world", finish="stop")]), [chunk("hello")])
    assert [c async for c in stream.chunks()]
    assert call.usage is None and await used(g) == RESERVED


async def test_stream_with_usage_settles_to_it() -> None:
    g = guards()
    stream, _ = await stream_of(g, batches([chunk(finish="stop"), chunk(usage={"total_tokens": 12})]), [chunk("hi")])
    assert len([c async for c in stream.chunks()]) == 3
    assert await used(g) == 12


async def test_stream_failing_after_bytes_reached_the_client_is_not_refunded() -> None:
    g = guards()
    stream, call = await stream_of(g, batches([chunk(" more")], fail=True), [chunk("hello")])
    seen = []
    with pytest.raises(UpstreamError):
        async for piece in stream.chunks():
            seen.append(piece)
    assert len(seen) == 2 and call.attempts[-1].outcome == "error"
    assert await used(g) == RESERVED  # used to be released to 0 although tokens were generated


async def test_stream_closed_before_any_byte_reached_the_client_is_released() -> None:
    g = guards()
    stream, call = await stream_of(g, batches([chunk(" more")]), [chunk("hello")])
    await stream.aclose()
    assert call.attempts[-1].outcome == "cancelled"
    assert await used(g) == 0
