"""Token limits settle to the best figure available when the upstream reports no usage, through a real gateway."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.sse import parse_sse
from tests.support.upstream import Behaviour, FakeUpstream

MESSAGES = [{"role": "user", "content": "hello"}]
# estimate_tokens: ceil(len("hello") / 4) + 4 per message + max_tokens 20 = 26 reserved per call, so a tpm of
# 60 admits exactly two calls when each keeps its reservation and every call when each is refunded to 0.
TPM = 60


class NoUsageUpstream(FakeUpstream):
    """The fake upstream, minus every `usage` it would report (as some OpenAI-compatible servers do)."""

    def _complete(
        self, base: dict[str, Any], reply: str, usage: dict[str, Any], b: Behaviour, n: int = 1
    ) -> web.Response:
        choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
        payload = {**base, "object": "chat.completion", "choices": [choice]}
        return web.json_response(payload, headers={"x-upstream-name": self.name})

    async def _stream(
        self, request: web.Request, stream: AsyncGenerator[bytes | None], b: Behaviour
    ) -> tuple[web.StreamResponse, bool]:
        async def without_usage() -> AsyncGenerator[bytes | None]:
            async for event in stream:
                if event is None or b'"usage"' not in event:
                    yield event

        return await super()._stream(request, without_usage(), b)


@pytest.fixture
def silent() -> Iterator[NoUsageUpstream]:
    with NoUsageUpstream.in_thread("a") as upstream:
        yield upstream


def chat(url: str, **body: object) -> httpx.Response:
    payload = {"model": "m", "messages": MESSAGES, "max_tokens": 20, **body}
    return httpx.post(f"{url}/v1/chat/completions", json=payload, timeout=20)


def test_completions_without_usage_keep_their_reservation(gateway_factory: GatewayFactory, silent) -> None:
    gw = gateway_factory(models(route(silent), tpm=TPM))
    first = chat(gw.url)
    assert first.status_code == 200 and not first.json().get("usage")  # the upstream really reported none
    codes = [first.status_code, *(chat(gw.url).status_code for _ in range(3))]
    assert codes == [200, 200, 429, 429], codes  # refunding the estimate to 0 would admit all four
    assert silent.count == 2


def test_stream_cut_mid_way_is_not_refunded(gateway_factory: GatewayFactory, silent) -> None:
    gw = gateway_factory(models(route(silent), tpm=TPM))
    for _ in range(2):
        resp = chat(gw.url, stream=True, x_test={"a": {"cut_after": 2}})
        assert resp.status_code == 200
        events = parse_sse([resp.content])
        assert events.content().startswith("[a]") and any("error" in c for c in events.chunks())
    refused = chat(gw.url, stream=True)
    assert refused.status_code == 429, refused.text  # the two cut streams used tokens: they are still counted
    assert silent.count == 2


def test_client_tpm_follows_the_same_rule(gateway_factory: GatewayFactory, silent) -> None:
    # CLIENT_TPM settles like a deployment's tpm: no usage reported, the reservation stands
    gw = gateway_factory(models(route(silent)), CLIENT_TPM=str(TPM))
    codes = [chat(gw.url).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429], codes
    assert silent.count == 2


def test_client_tpm_is_released_when_nothing_was_delivered(gateway_factory: GatewayFactory, silent) -> None:
    gw = gateway_factory(models(route(silent)), CLIENT_TPM=str(TPM), CIRCUIT_FAILURE_THRESHOLD="100")
    for _ in range(4):  # each fails before a byte reached the client: released, so none is refused for tokens
        assert chat(gw.url, x_test={"a": {"status": 500}}).status_code == 502
    assert silent.count >= 4
