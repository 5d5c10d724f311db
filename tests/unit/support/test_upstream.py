"""The fake upstream and the SSE reader, exercised through real loopback sockets with httpx and the openai SDK."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.sse import SSEComment, SSEEvent, SSEParser, aparse_sse, parse_sse
from tests.support.upstream import FakeUpstream, count_prompt_tokens, count_tokens, default_reply, split_reply

MESSAGES: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello, world!"}]
PROMPT_TOKENS = 7  # "Be" "brief" "." "Hello" "," "world" "!"


def chat(stream: bool = False, **x_test: dict[str, Any]) -> dict[str, Any]:
    """A chat request body; keyword arguments become `x_test` behaviours per upstream name."""
    return {"model": "m", "messages": MESSAGES, "stream": stream, "x_test": x_test}


def sdk(up: FakeUpstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=up.base_url, api_key="x", max_retries=0)


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("a") as upstream:
        yield upstream


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


async def test_non_stream_reports_its_name_and_honest_usage(up: FakeUpstream) -> None:
    async with sdk(up) as api:
        raw = await api.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    completion = raw.parse()
    content = completion.choices[0].message.content or ""
    assert raw.headers["x-upstream-name"] == "a"
    assert content == default_reply("a") == "[a] The quick brown fox"
    assert completion.model == "m" and completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == PROMPT_TOKENS == count_prompt_tokens(MESSAGES)
    assert completion.usage.completion_tokens == count_tokens(content) == 7
    assert completion.usage.total_tokens == PROMPT_TOKENS + 7
    [record] = up.requests
    assert up.count == 1 and record.finished and not record.client_disconnected
    assert record.method == "POST" and record.path == "/v1/chat/completions"
    assert record.headers["authorization"] == "Bearer x" and record.body["messages"] == MESSAGES


async def test_stream_reassembles_to_the_non_stream_text_and_usage(up: FakeUpstream) -> None:
    async with sdk(up) as api:
        whole = await api.chat.completions.create(model="m", messages=MESSAGES)
        stream = await api.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    contents = [chunk.choices[0].delta.content for chunk in chunks[1:-2]]
    assert len(contents) == 5 and "".join(c or "" for c in contents) == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-2].usage is None
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


async def test_raw_stream_ends_with_done_and_has_no_usage_unless_asked(
    up: FakeUpstream, client: httpx.AsyncClient
) -> None:
    async with client.stream("POST", f"{up.base_url}/chat/completions", json=chat(stream=True)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-upstream-name"] == "a"
        sse = await aparse_sse(response.aiter_bytes())
    assert sse.done and not sse.truncated and sse.comments == []
    assert sse.content() == "[a] The quick brown fox" and sse.usage() is None


async def test_x_test_picks_behaviour_per_upstream(client: httpx.AsyncClient) -> None:
    body = chat(b={"status": 503, "retry_after": 1}, c={"reply": "own words"})
    body["x_test"]["*"] = {"reply": "shared words"}
    async with FakeUpstream("a") as a, FakeUpstream("b") as b, FakeUpstream("c", {"reply": "default"}) as c:
        replies = [await client.post(f"{up.base_url}/chat/completions", json=body) for up in (a, b, c)]
        c.behaviour = {"status": 500}
        failed = await client.post(f"{c.base_url}/chat/completions", json=chat())
    assert replies[0].json()["choices"][0]["message"]["content"] == "shared words"
    assert replies[1].status_code == 503 and replies[1].headers["retry-after"] == "1"
    assert replies[1].json()["error"] == {"message": "[b] simulated 503", "type": "server_error", "code": 503}
    assert replies[2].json()["choices"][0]["message"]["content"] == "own words"
    assert [r.headers["x-upstream-name"] for r in (*replies, failed)] == ["a", "b", "c", "c"]
    assert failed.status_code == 500
    assert (a.count, b.count, c.count) == (1, 1, 2)


async def test_status_with_retry_after_is_an_openai_error(up: FakeUpstream) -> None:
    async with sdk(up) as api:
        with pytest.raises(openai.RateLimitError) as caught:
            await api.chat.completions.create(
                model="m", messages=MESSAGES, extra_body={"x_test": {"a": {"status": 429, "retry_after": 2}}}
            )
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body == {"message": "[a] simulated 429", "type": "rate_limit_error", "code": 429}


async def test_delay_headers_hangs_before_headers(up: FakeUpstream, client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    ok = await client.post(f"{up.base_url}/chat/completions", json=chat(a={"delay_headers": 0.1}))
    assert ok.status_code == 200 and time.monotonic() - started >= 0.1
    with pytest.raises(httpx.ReadTimeout):
        await client.post(f"{up.base_url}/chat/completions", json=chat(a={"delay_headers": 0.3}), timeout=0.05)
    record = up.requests[-1]
    assert await record.wait_ended(1) and record.client_disconnected and not record.finished


async def test_delay_first_chunk_comes_after_headers_and_chunk_delay_spaces_chunks(
    up: FakeUpstream, client: httpx.AsyncClient
) -> None:
    body = chat(stream=True, a={"delay_first_chunk": 0.15, "chunk_delay": 0.02, "chunks": 3})
    started = time.monotonic()
    async with client.stream("POST", f"{up.base_url}/chat/completions", json=body) as response:
        headers_at = time.monotonic() - started
        arrivals = [time.monotonic() - started async for _ in response.aiter_raw()]
    assert headers_at < 0.1 <= 0.15 <= arrivals[0]
    assert arrivals[-1] >= 0.15 + 4 * 0.02  # three content chunks and the finish chunk


async def test_cut_after_aborts_the_connection_mid_stream(up: FakeUpstream, client: httpx.AsyncClient) -> None:
    received: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", f"{up.base_url}/chat/completions", json=chat(True, a={"cut_after": 2})) as r:
            async for data in r.aiter_bytes():
                received.append(data)
    sse = parse_sse(received)
    assert not sse.done and sse.content() == "[a] The"
    assert [chunk["choices"][0]["finish_reason"] for chunk in sse.chunks()] == [None, None, None]
    record = up.requests[-1]
    assert await record.wait_ended(1) and not record.finished and not record.client_disconnected
    async with sdk(up) as api:
        stream = await api.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, extra_body={"x_test": {"*": {"cut_after": 1}}}
        )
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                pass


async def test_stall_after_goes_silent_then_carries_on(up: FakeUpstream, client: httpx.AsyncClient) -> None:
    body = chat(True, a={"stall_after": 2, "stall_seconds": 0.2})
    async with client.stream("POST", f"{up.base_url}/chat/completions", json=body) as response:
        arrivals = []
        received = []
        async for data in response.aiter_raw():
            arrivals.append(time.monotonic())
            received.append(data)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert max(gaps) >= 0.2 and parse_sse(received).done


async def test_stall_until_the_client_gives_up_records_the_disconnect(
    up: FakeUpstream, client: httpx.AsyncClient
) -> None:
    received: list[bytes] = []
    with pytest.raises(httpx.ReadTimeout):
        body = chat(True, a={"stall_after": 2})
        async with client.stream("POST", f"{up.base_url}/chat/completions", json=body, timeout=0.1) as response:
            async for data in response.aiter_bytes():
                received.append(data)
    assert parse_sse(received).content() == "[a] The"
    record = up.requests[-1]
    assert await record.wait_ended(1) and record.client_disconnected


async def test_malformed_body_and_malformed_stream_event(up: FakeUpstream, client: httpx.AsyncClient) -> None:
    plain = await client.post(f"{up.base_url}/chat/completions", json=chat(a={"malformed": True}))
    assert plain.status_code == 200 and plain.headers["x-upstream-name"] == "a"
    with pytest.raises(ValueError):
        plain.json()
    body = chat(True, a={"malformed": True, "malformed_after": 2})
    async with client.stream("POST", f"{up.base_url}/chat/completions", json=body) as response:
        sse = await aparse_sse(response.aiter_bytes())
    bad = [i for i, data in enumerate(sse.data) if not data.startswith('{"id":"chatcmpl') and data != "[DONE]"]
    assert bad == [3] and sse.done  # after the role chunk and two content chunks


async def test_no_done_ends_cleanly_after_finish_reason(up: FakeUpstream, client: httpx.AsyncClient) -> None:
    async with client.stream("POST", f"{up.base_url}/chat/completions", json=chat(True, a={"no_done": True})) as r:
        sse = await aparse_sse(r.aiter_bytes())
    assert not sse.done and not sse.truncated
    assert sse.chunks()[-1]["choices"][0]["finish_reason"] == "stop"


async def test_usage_in_last_chunk_with_reasoning_and_cached_tokens(up: FakeUpstream) -> None:
    behaviour = {"usage_in_last_chunk": True, "reasoning_tokens": 3, "cached_tokens": 2, "reply": "Hi there."}
    async with sdk(up) as api:
        stream = await api.chat.completions.create(
            model="m",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"x_test": {"a": behaviour}},
        )
        chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (7, 3, 10)
    assert last.usage.completion_tokens_details and last.usage.completion_tokens_details.reasoning_tokens == 3
    assert last.usage.prompt_tokens_details and last.usage.prompt_tokens_details.cached_tokens == 2


async def test_health_and_models_follow_the_instance_behaviour(up: FakeUpstream, client: httpx.AsyncClient) -> None:
    health = await client.get(f"{up.url}/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"} and health.headers["x-upstream-name"] == "a"
    async with sdk(up) as api:
        assert [model.id async for model in api.models.list()] == ["fake-model"]
    up.behaviour = {"health_status": 503}
    assert (await client.get(f"{up.url}/health")).status_code == 503
    assert (await client.get(f"{up.base_url}/models")).status_code == 503
    assert up.count == 0 and [r.path for r in up.requests][-2:] == ["/health", "/v1/models"]
    up.reset()
    assert up.requests == []


async def test_stop_refuses_connections_and_start_reopens_the_same_port(
    up: FakeUpstream, client: httpx.AsyncClient
) -> None:
    port = up.port
    assert (await client.get(f"{up.url}/health")).status_code == 200
    await up.stop()
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{up.url}/health")
    async with sdk(up) as api:
        with pytest.raises(openai.APIConnectionError):
            await api.chat.completions.create(model="m", messages=MESSAGES)
    await up.start()
    assert up.port == port and (await client.get(f"{up.url}/health")).status_code == 200


async def test_client_disconnect_mid_stream_is_recorded(up: FakeUpstream, client: httpx.AsyncClient) -> None:
    body = chat(True, a={"chunk_delay": 0.05})
    async with client.stream("POST", f"{up.base_url}/chat/completions", json=body) as response:
        async for _ in response.aiter_bytes():
            break
    record = up.requests[-1]
    assert await record.wait_ended(1)
    assert record.client_disconnected and not record.finished


async def test_unknown_behaviour_keys_are_rejected(up: FakeUpstream, client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="delay_header"):
        FakeUpstream("x", {"delay_header": 1})
    response = await client.post(f"{up.base_url}/chat/completions", json=chat(a={"stauts": 500}))
    assert response.status_code == 400 and "stauts" in response.json()["error"]["message"]


def test_thread_variant_serves_sync_clients() -> None:
    with FakeUpstream.in_thread("t", {"reply": "sync hi"}) as up, httpx.Client(timeout=5) as http:
        assert http.post(f"{up.base_url}/chat/completions", json=chat()).json()["choices"][0]["message"] == {
            "role": "assistant",
            "content": "sync hi",
        }
        with openai.OpenAI(base_url=up.base_url, api_key="x", max_retries=0) as api:
            stream = api.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "sync hi"
        port = up.port
        up.stop_sync()
        with pytest.raises(httpx.ConnectError):
            http.get(f"{up.url}/health")
        up.start_sync()
        assert up.port == port and http.get(f"{up.url}/health").headers["x-upstream-name"] == "t"
        assert up.count == 2


async def test_thread_variant_can_be_driven_from_another_loop(client: httpx.AsyncClient) -> None:
    with FakeUpstream.in_thread("t") as up:
        await up.stop()
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{up.url}/health")
        await up.start()
        assert (await client.get(f"{up.url}/health")).status_code == 200


@pytest.mark.parametrize("text", ["[a] The quick brown fox", "one", "  spaced  out \n", "", "a b c d e f g h"])
def test_split_reply_pieces_concatenate_to_the_reply(text: str) -> None:
    for chunks in range(1, 9):
        pieces = split_reply(text, chunks)
        assert "".join(pieces) == text and 1 <= len(pieces) <= chunks


def test_sse_parser_keeps_comments_apart_and_handles_split_input() -> None:
    raw = (
        ': keep-alive\r\n\r\ndata: {"a":\r',
        b'\n: ping\ndata: "\xc3',
        b'\xa9"}\n\nevent: x\nid: 7\ndata: one\ndata: two\n\n',
    )
    sse = parse_sse([*raw, b"data: partial"])
    assert sse.comments == ["keep-alive", "ping"]
    assert sse.events == [SSEEvent('{"a":\n"é"}'), SSEEvent("one\ntwo", event="x", id="7")]
    assert sse.truncated and not sse.done
    assert isinstance(sse.items[0], SSEComment) and isinstance(sse.items[1], SSEComment)


def test_sse_parser_reads_lines_and_increments() -> None:
    lines = [": keep-alive", "", "data: [DONE]", ""]
    assert parse_sse(lines, lines=True).done
    parser = SSEParser()
    assert parser.feed("data: 1") == [] and parser.pending
    assert parser.feed("\n\n") == [SSEEvent("1")] and not parser.pending
