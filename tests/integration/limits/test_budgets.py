"""Spend budgets end to end on a real gateway: the 402 as the openai SDK sees it, a failed call's hold released, a
fallback re-reserving at the dearer deployment's price, GET /api/v1/key through OpenRouter's SDK, /stats' list."""

from __future__ import annotations

import time
import warnings
from typing import Any

import httpx
import openai
import pytest
from openrouter import OpenRouter, errors
from openrouter.utils import BackoffStrategy, RetryConfig

from tests.conftest import GatewayFactory

KEYS = "team-a:sk-team-a,team-b:sk-team-b"
ADMIN = "sk-admin-budgets"
PRICING = {"prompt": "100", "completion": "1000"}  # USD per 1M tokens
DEAD = "http://127.0.0.1:1/v1"  # nothing listens: every attempt there fails to connect
MESSAGES = [{"role": "user", "content": "hi"}]
# "hi" is estimated at 5 prompt tokens (chars / 4 + 4 per message), and max_tokens=10: 0.0105 USD at PRICING.
ESTIMATE = (5 * 100 + 10 * 1000) / 1e6
REAL = (1 * 100 + 10 * 1000) / 1e6  # the mock counts "hi" as one token and writes all 10


def config() -> dict[str, Any]:
    mock = {"kind": "mock", "mock": {"completion_tokens": 10}}
    return {
        "models": [
            {"id": "m", "pricing": PRICING, "route": [mock]},
            {"id": "broken", "pricing": PRICING, "route": [{"kind": "openai", "base_url": DEAD, "api_key": "x"}]},
            {
                "id": "fallback",
                "route": [
                    {"kind": "openai", "base_url": DEAD, "api_key": "x", "pricing": {"prompt": "1", "completion": "1"}},
                    {**mock, "weight": 0, "pricing": {"prompt": "200", "completion": "2000"}},
                ],
            },
        ]
    }


def client(url: str, key: str = "sk-team-a") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def ask(api: openai.OpenAI, model: str = "m", **extra: Any) -> Any:
    return api.chat.completions.create(model=model, messages=MESSAGES, max_tokens=10, **extra)  # type: ignore[arg-type]


def openrouter(url: str, key: str) -> OpenRouter:
    retry = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)
    return OpenRouter(api_key=key, server_url=f"{url}/api/v1", retry_config=retry, timeout_ms=10_000)


def key_info(url: str, key: str) -> Any:
    with openrouter(url, key) as sdk:
        with warnings.catch_warnings():  # the SDK's model warns of its own deprecated `rate_limit` as it parses it
            warnings.simplefilter("ignore", DeprecationWarning)
            return sdk.api_keys.get_current_key_metadata().data


def test_a_spent_budget_answers_402_budget_exceeded_and_says_when_it_resets(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(config(), GATEWAY_API_KEYS=KEYS, GATEWAY_BUDGETS="team-a:0.05/day", ADMIN_API_KEY=ADMIN)
    api = client(gw.url)
    costs = [ask(api).usage.model_extra["cost"] for _ in range(4)]  # 4 * 0.0101 spent; a 5th may cost 0.0105
    assert costs == [pytest.approx(REAL)] * 4
    with pytest.raises(openai.APIStatusError) as info:
        ask(api)
    error = info.value
    assert error.status_code == 402 and error.code == "budget_exceeded" and error.type == "insufficient_quota"
    assert "budget exceeded for key 'team-a': $0.0404 of $0.05 spent today (UTC)" in error.message
    assert "may cost up to $0.0105" in error.message and "resets at " in error.message
    headers = error.response.headers
    assert int(headers["retry-after"]) > 0 and headers["x-should-retry"] == "false"
    streamed = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "m", "messages": MESSAGES, "max_tokens": 10, "stream": True},
        headers={"authorization": "Bearer sk-team-a"},
        timeout=10,
    )
    assert streamed.status_code == 402 and streamed.json()["error"]["code"] == "budget_exceeded"
    anthropic = httpx.post(
        f"{gw.url}/v1/messages",
        json={"model": "m", "messages": MESSAGES, "max_tokens": 10},
        headers={"x-api-key": "sk-team-a", "anthropic-version": "2023-06-01"},
        timeout=10,
    )
    assert anthropic.status_code == 402 and anthropic.json()["error"]["type"] == "billing_error"
    with openrouter(gw.url, "sk-team-a") as sdk, pytest.raises(errors.PaymentRequiredResponseError) as typed:
        sdk.chat.send(model="m", messages=MESSAGES, max_tokens=10)  # type: ignore[arg-type]
    assert typed.value.data.error.code == 402
    assert typed.value.data.error.metadata == {"error_type": "payment_required", "gateway_code": "budget_exceeded"}
    assert ask(client(gw.url, "sk-team-b")).choices[0].message.content  # a key without a budget is not limited

    mine = key_info(gw.url, "sk-team-a")
    assert (mine.label, mine.limit, mine.limit_reset) == ("team-a", 0.05, "daily")
    assert mine.usage == pytest.approx(4 * REAL) and mine.usage_daily == mine.usage
    assert mine.limit_remaining == pytest.approx(0.05 - 4 * REAL)
    assert mine.effective_budget is not None and mine.effective_budget.scope == "api_key"
    other = key_info(gw.url, "sk-team-b")
    assert (other.label, other.limit, other.limit_remaining, other.budgets) == ("team-b", None, None, [])
    refused = httpx.get(f"{gw.url}/api/v1/key", headers={"authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == 401

    stats = httpx.get(f"{gw.url}/stats", headers={"authorization": f"Bearer {ADMIN}"}).json()
    (row,) = stats["budgets"]
    assert set(row) == {"key", "period", "limit_usd", "spent_usd", "remaining_usd", "resets_at"}
    assert (row["key"], row["period"], row["limit_usd"]) == ("team-a", "day", 0.05)
    assert row["spent_usd"] == pytest.approx(4 * REAL) and row["resets_at"].endswith("T00:00:00Z")


def test_a_failed_call_releases_and_a_fallback_reserves_at_the_dearer_price(gateway_factory: GatewayFactory) -> None:
    # room for one call's estimate only: a hold left behind by a failure would refuse the next call
    gw = gateway_factory(config(), GATEWAY_API_KEYS=KEYS, GATEWAY_BUDGETS=f"team-a:{ESTIMATE * 2 + 1e-6}/day")
    api = client(gw.url)
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as info:
            ask(api, "broken")
        assert info.value.status_code in (502, 503)  # failed, then its circuit opened
    assert key_info(gw.url, "sk-team-a").usage == 0.0
    # the cheap dead deployment first, then the mock at twice PRICING: 0.021 reserved, 0.0202 spent
    served = ask(api, "fallback")
    assert served.usage.model_extra["cost"] == pytest.approx(2 * REAL)
    assert key_info(gw.url, "sk-team-a").usage == pytest.approx(2 * REAL)
    with pytest.raises(openai.APIStatusError) as info:  # 0.0202 spent: the dead pick fits, the dearer fallback not
        ask(api, "fallback")
    assert info.value.status_code == 402


def test_a_stream_settles_at_its_end_and_a_client_that_leaves_pays_for_what_it_got(
    gateway_factory: GatewayFactory,
) -> None:
    slow = {"kind": "mock", "mock": {"completion_tokens": 200, "chunk_delay_ms": 20}}
    models = {"models": [{"id": "s", "pricing": PRICING, "route": [slow]}]}
    gw = gateway_factory(models, GATEWAY_API_KEYS=KEYS, GATEWAY_BUDGETS="team-a:1/day")
    api = client(gw.url)
    chunks = list(
        api.chat.completions.create(
            model="s", messages=MESSAGES, max_tokens=20, stream=True, stream_options={"include_usage": True}
        )  # type: ignore[call-overload]
    )
    cost = chunks[-1].usage.model_extra["cost"]
    assert cost == pytest.approx((1 * 100 + 20 * 1000) / 1e6)
    assert key_info(gw.url, "sk-team-a").usage == pytest.approx(cost)  # settled to the real cost at the end

    body = {"model": "s", "messages": MESSAGES, "max_tokens": 200, "stream": True}
    with httpx.stream(
        "POST", f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-team-a"}, timeout=10
    ) as response:
        lines = response.iter_lines()
        got = [line for line, _ in zip(lines, range(8), strict=False) if line.startswith("data: {")]
        assert got  # a few chunks arrived; then the client leaves
    full = (5 * 100 + 200 * 1000) / 1e6  # what the hold was
    deadline = time.monotonic() + 10
    while (left := key_info(gw.url, "sk-team-a").usage - cost) <= 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 < left < full / 4, left  # what was relayed, estimated from its text, not the whole hold


def test_redis_down_admits_as_the_rate_limits_do_and_the_key_route_says_503(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        config(), GATEWAY_API_KEYS=KEYS, GATEWAY_BUDGETS="team-a:0.001/day", REDIS_URL="redis://127.0.0.1:1/0"
    )
    api = client(gw.url)
    for _ in range(2):  # each far past the budget: admitted without it (logged), not refused
        assert ask(api).choices[0].message.content
    down = httpx.get(f"{gw.url}/api/v1/key", headers={"authorization": "Bearer sk-team-a"}, timeout=10)
    assert down.status_code == 503
    assert down.json()["error"]["metadata"]["gateway_code"] == "budget_ledger_unavailable"
