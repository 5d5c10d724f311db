"""The mock deployment as a transport on mock://: real OpenAI bytes through `open`, `read_json` and `sse_batches`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest

from adapters.base import Adapter
from adapters.kinds import kind_spec
from adapters.registry import adapter_for
from adapters.tokens import count_tokens
from routing.config.schema import DeploymentConfig, MockOptions, Timeouts
from routing.errors import UpstreamError
from routing.upstream.transport import HttpTransport

MESSAGES = [{"role": "user", "content": "Say something, please."}]


def mock_deployment(**options: Any) -> DeploymentConfig:
    return DeploymentConfig(
        name="mock", model_id="m", kind="mock", provider="mock", base_url="mock://local",
        provider_model_id="mock-model", weight=1, mock=MockOptions(**options),
    )  # fmt: skip


def mock_adapter() -> Adapter:
    spec = kind_spec("mock")
    assert spec is not None and spec.in_process
    return adapter_for(spec)


@pytest.fixture
async def transport() -> Any:
    transport = HttpTransport()
    await transport.start()
    yield transport
    await transport.close()


async def complete(transport: HttpTransport, dep: DeploymentConfig, **payload: Any) -> dict[str, Any]:
    adapter = mock_adapter()
    request = adapter.build(dep, {"messages": MESSAGES, **payload}, stream=False)
    resp = await transport.open(dep, request, adapter, 10)
    assert resp.headers.get("Content-Type") == "application/json"
    return await transport.read_json(dep, resp, adapter, request)


async def stream(transport: HttpTransport, dep: DeploymentConfig, **payload: Any) -> list[list[Any]]:
    """Parsed events, grouped by the read that delivered them."""
    adapter = mock_adapter()
    request = adapter.build(dep, {"messages": MESSAGES, **payload}, stream=True)
    resp = await transport.open(dep, request, adapter, 10)
    assert resp.headers.get("content-type") == "text/event-stream"
    batches = [
        [adapter.parse_event(data) for data in batch] async for batch in transport.sse_batches(dep, resp, dep.timeouts)
    ]
    resp.release()
    return batches


async def test_a_completion_is_real_openai_json_with_honest_usage(transport: HttpTransport) -> None:
    result = await complete(transport, mock_deployment(completion_tokens=5))
    assert result["object"] == "chat.completion" and result["model"] == "mock-model"
    (choice,) = result["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    prompt = count_tokens(MESSAGES[0]["content"])
    assert result["usage"] == {"prompt_tokens": prompt, "completion_tokens": 5, "total_tokens": prompt + 5}
    assert len(choice["message"]["content"].split()) == 5


async def test_max_tokens_cuts_the_reply_with_finish_reason_length(transport: HttpTransport) -> None:
    result = await complete(transport, mock_deployment(reply="one two three four five six"), max_tokens=2)
    assert result["choices"][0]["message"]["content"] == "one two"
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 2
    batches = await stream(transport, mock_deployment(completion_tokens=9), max_completion_tokens=3)
    chunks = [e.chunk for batch in batches for e in batch if e.chunk is not None]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


async def test_a_stream_is_sse_with_role_tokens_finish_usage_and_done(transport: HttpTransport) -> None:
    batches = await stream(transport, mock_deployment(reply="Hello, world"))
    assert len(batches) == 1  # no delays: one read holds the whole stream, as a fast upstream's would
    events = batches[0]
    assert events[-1].done
    chunks = [e.chunk for e in events if e.chunk is not None]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello, world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3  # Hello , world
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and {c["model"] for c in chunks} == {"mock-model"}


async def test_stream_timing_follows_ttft_and_chunk_delay(transport: HttpTransport) -> None:
    dep = mock_deployment(completion_tokens=4, ttft_ms=60, chunk_delay_ms=30)
    adapter = mock_adapter()
    request = adapter.build(dep, {"messages": MESSAGES}, stream=True)
    began = time.perf_counter()
    resp = await transport.open(dep, request, adapter, 10)
    arrivals = []
    async for batch in transport.sse_batches(dep, resp, dep.timeouts):
        arrivals.append((time.perf_counter() - began, len(batch)))
    resp.release()
    assert len(arrivals) == 4  # role + first token, then one read per later token (the last with the end)
    assert 0.055 <= arrivals[0][0] < 0.2
    assert 0.14 <= arrivals[-1][0] < 0.4  # 60 + 3 x 30 ms
    whole_began = time.perf_counter()
    await complete(transport, dep)
    assert 0.175 <= time.perf_counter() - whole_began < 0.5  # 60 + 4 x 30 ms before the body


async def test_a_stall_longer_than_idle_is_a_timeout_as_for_any_upstream(transport: HttpTransport) -> None:
    dep = replace(mock_deployment(completion_tokens=3, chunk_delay_ms=300), timeouts=Timeouts(idle=0.05))
    with pytest.raises(UpstreamError, match="stream stalled"):
        await stream(transport, dep)


async def test_other_paths_answer_404_which_falls_back(transport: HttpTransport) -> None:
    dep = mock_deployment()
    adapter = mock_adapter()
    request = adapter.build(dep, {"messages": MESSAGES}, stream=False)
    wrong = type(request)("POST", "mock://local/embeddings", request.headers, request.body, False)
    with pytest.raises(UpstreamError) as info:
        await transport.open(dep, wrong, adapter, 10)
    assert info.value.upstream_status == 404 and "mock deployment serves" in info.value.message
    unknown = type(request)("POST", "ftp://local/chat/completions", request.headers, request.body, False)
    with pytest.raises(UpstreamError, match="no transport for ftp://"):
        await transport.open(dep, unknown, adapter, 10)


async def test_the_mock_answers_concurrent_calls_independently(transport: HttpTransport) -> None:
    dep = mock_deployment(completion_tokens=8, ttft_ms=20)
    results = await asyncio.gather(
        *(complete(transport, dep, messages=[{"role": "user", "content": f"q{i}"}]) for i in range(20))
    )
    assert all(r["usage"]["completion_tokens"] == 8 for r in results)
