"""Reasoning models through the gateway: a long think streamed as vLLM's `delta.reasoning` commits the stream at
its first piece, reaches the client as it comes, and never counts as a first-token timeout."""

from __future__ import annotations

import time

import pytest

from tests.conftest import GatewayFactory
from tests.integration.api.conftest import Client
from tests.integration.api.rows import row
from tests.integration.core.conftest import models, route

MESSAGES = [{"role": "user", "content": "Think, then answer."}]
THINK = "First I consider the question, then I weigh each option, then I decide on one answer."


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_think_longer_than_first_token_timeout_streams_and_does_not_fall_back(
    gateway_factory: GatewayFactory, upstreams, field: str, client: Client
) -> None:
    a, b = upstreams
    # six pieces 0.4 s apart: 2.4 s of thinking against a 1 s first-token timeout
    a.behaviour = {"reasoning": THINK, "reasoning_field": field, "reasoning_chunks": 6, "reasoning_delay": 0.4}
    slow = {"first_token": 1, "idle": 5, "connect": 2, "total": 30}
    gw = gateway_factory(models(route(a, timeouts=slow, max_concurrent=2), route(b, weight=0)))
    began = time.monotonic()
    raw = client(gw.url).chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    arrivals: list[tuple[float, str, str]] = []
    for chunk in raw.parse():
        if chunk.choices:
            delta = chunk.choices[0].delta
            thought = (delta.model_extra or {}).get(field) or ""
            arrivals.append((time.monotonic() - began, thought, delta.content or ""))
    thoughts = [(t, r) for t, r, _ in arrivals if r]
    assert "".join(r for _, r in thoughts) == THINK
    assert thoughts[0][0] < 1.0, "the first piece of reasoning reached the client as it came"
    assert thoughts[-1][0] - thoughts[0][0] > 1.5, "the think was relayed piece by piece, not buffered"
    assert "".join(c for _, _, c in arrivals).startswith("[a]")
    assert b.count == 0 and a.count == 1
    logged = row(gw, raw.headers["x-request-id"])
    assert logged["status_code"] == 200 and logged["deployment"] == "a" and not logged["fallback_used"]


def test_non_streamed_reasoning_passes_through(gateway_factory: GatewayFactory, upstreams, client: Client) -> None:
    a, _ = upstreams
    a.behaviour = {"reasoning": THINK, "reasoning_tokens": 7}
    gw = gateway_factory(models(route(a)))
    completion = client(gw.url).chat.completions.create(model="m", messages=MESSAGES)
    message = completion.choices[0].message
    assert (message.model_extra or {})["reasoning"] == THINK and message.content.startswith("[a]")
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 7
    # reasoning tokens are inside completion_tokens: priced once, at the completion price (models(): 1 and 2 USD/1M)
    expected = (usage.prompt_tokens * 1 + usage.completion_tokens * 2) / 1_000_000
    assert usage.model_extra["cost"] == pytest.approx(expected)
