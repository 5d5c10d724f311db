"""Spend budgets' pure logic: UTC periods, the admission rule, reserve/settle arithmetic, the 402's wording."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from routing.config.schema import DeploymentConfig, ModelConfig, Pricing
from routing.limits.spend import (
    NANOS,
    Budget,
    InProcessSpendLedger,
    SpendDenial,
    SpendHold,
    fits,
    parse_budget,
    period_bounds,
    to_nanos,
)
from routing.limits.spending import CallSpend, estimate_usd, exceeded, output_cap, settled_usd


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_day_runs_from_utc_midnight_and_a_month_from_the_first() -> None:
    start, end = period_bounds("day", ts("2026-12-03T23:59:59"))
    assert (start.isoformat(), end.isoformat()) == ("2026-12-03T00:00:00+00:00", "2026-12-04T00:00:00+00:00")
    start, end = period_bounds("month", ts("2026-12-31T12:00:00"))
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    start, end = period_bounds("month", ts("2028-02-01T00:00:00"))  # the first second of a month is in it
    assert (start.day, end.month, end.day) == (1, 3, 1)


@pytest.mark.parametrize(
    ("spec", "period", "limit"), [("50/day", "day", 50.0), ("$12.5 / Month", "month", 12.5), ("0.01/day", "day", 0.01)]
)
def test_budget_specs(spec: str, period: str, limit: float) -> None:
    budget = parse_budget("team-a", spec)
    assert (budget.period, budget.limit_usd) == (period, limit)


@pytest.mark.parametrize("spec", ["50", "50/week", "-1/day", "0/day", "abc/day", "50/day/day", ""])
def test_bad_budget_specs_say_the_form(spec: str) -> None:
    with pytest.raises(ValueError, match=r"day|month|> 0"):
        parse_budget("team-a", spec)


def test_the_rule_refuses_an_exhausted_budget_and_any_overshoot() -> None:
    assert fits(spent=0, held=0, charge=100, limit=100)
    assert not fits(spent=0, held=1, charge=100, limit=100)
    assert not fits(spent=100, held=0, charge=0, limit=100)  # spent: even a free call is refused
    assert fits(spent=40, held=30, charge=30, limit=100)
    assert not fits(spent=40, held=30, charge=31, limit=100)


NOW = ts("2026-12-03T10:00:00")
BUDGET = Budget("team-a", "day", 1.0)


async def test_reserve_then_settle_to_the_real_cost() -> None:
    ledger = InProcessSpendLedger(clock=lambda: NOW)
    hold = await ledger.reserve(BUDGET, to_nanos(0.4))
    assert isinstance(hold, SpendHold)
    second = await ledger.reserve(BUDGET, to_nanos(0.4))
    assert isinstance(second, SpendHold)
    refused = await ledger.reserve(BUDGET, to_nanos(0.4))  # 0.8 held: 0.4 more would pass 1.0
    assert isinstance(refused, SpendDenial) and refused.state.held == to_nanos(0.8)
    await ledger.settle(hold, to_nanos(0.1))  # it cost less than its estimate: the rest comes back
    await ledger.settle(second, 0)  # failed before any output: released
    (state,) = await ledger.peek([BUDGET])
    assert (state.spent, state.held, state.remaining) == (to_nanos(0.1), 0, to_nanos(0.9))
    assert state.row() == {
        "key": "team-a",
        "period": "day",
        "limit_usd": 1.0,
        "spent_usd": 0.1,
        "remaining_usd": 0.9,
        "resets_at": "2026-12-04T00:00:00Z",
    }


async def test_a_call_dearer_than_the_whole_budget_runs_only_alone_into_an_untouched_period() -> None:
    ledger = InProcessSpendLedger(clock=lambda: NOW)
    big = await ledger.reserve(BUDGET, to_nanos(5.0))
    assert isinstance(big, SpendHold) and big.charged == BUDGET.limit_nanos  # charged as the whole budget
    assert isinstance(await ledger.reserve(BUDGET, 1), SpendDenial)
    await ledger.settle(big, to_nanos(3.0))
    assert isinstance(await ledger.reserve(BUDGET, 1), SpendDenial)  # spent past the limit: refused


async def test_a_replacing_reservation_swaps_the_hold_in_one_step() -> None:
    ledger = InProcessSpendLedger(clock=lambda: NOW)
    first = await ledger.reserve(BUDGET, to_nanos(0.6))
    assert isinstance(first, SpendHold)
    # a fallback to a dearer deployment: 0.9 would not fit beside 0.6, but it replaces it
    dearer = await ledger.reserve(BUDGET, to_nanos(0.9), replacing=first)
    assert isinstance(dearer, SpendHold)
    (state,) = await ledger.peek([BUDGET])
    assert state.held == to_nanos(0.9)


async def test_a_new_day_starts_empty_and_the_old_entries_go() -> None:
    now = [NOW]
    ledger = InProcessSpendLedger(clock=lambda: now[0])
    hold = await ledger.reserve(BUDGET, to_nanos(1.0))
    assert isinstance(hold, SpendHold)
    await ledger.settle(hold, to_nanos(1.0))
    assert isinstance(await ledger.reserve(BUDGET, 1), SpendDenial)
    now[0] = ts("2026-12-04T00:00:00")
    assert isinstance(await ledger.reserve(BUDGET, to_nanos(0.5)), SpendHold)
    now[0] = ts("2026-12-05T02:00:00")  # past the old entries' margin: a new entry sweeps them
    assert isinstance(await ledger.reserve(BUDGET, 1), SpendHold)
    assert list(ledger._entries) == ["team-a:day:20261205"]


def dep(
    prompt: float = 0.0, completion: float = 0.0, request: float = 0.0, per_second: float = 0.0
) -> DeploymentConfig:
    return DeploymentConfig(
        model_id="m",
        name="d",
        provider="mock",
        kind="mock",
        base_url="",
        provider_model_id="m",
        weight=1.0,
        pricing=Pricing(prompt=prompt, completion=completion, request=request),
        cost_per_second=per_second,
    )


def test_the_estimate_is_priced_as_the_call_is_billed() -> None:
    assert estimate_usd(dep(prompt=1.0, completion=2.0), 1000, 500) == pytest.approx(0.002)
    assert estimate_usd(dep(prompt=1.0, request=0.01), 1000, 0) == pytest.approx(0.011)
    assert estimate_usd(dep(per_second=0.001), 50, 50) == pytest.approx(0.001)  # 100 tokens at 100 tokens/s
    model = ModelConfig(id="m", name="m", deployments=(), max_output_length=2048)
    assert output_cap(model, {"max_tokens": 100}) == 100
    assert output_cap(model, {}) == 2048  # no max_tokens: the most the model may write
    assert output_cap(model, {"max_completion_tokens": 10**6}) == 2048


def test_what_a_finished_call_settles_to() -> None:
    assert settled_usd(None, None, 0.5, delivered=False) == 0.0  # nothing reached the client: released
    assert settled_usd(dep(prompt=1.0), None, 0.0, delivered=True) is None  # served, no usage: the hold stands
    usage = {"prompt_tokens": 3, "completion_tokens": 4}
    assert settled_usd(dep(prompt=1.0), usage, 0.25, delivered=True) == 0.25
    assert settled_usd(dep(per_second=0.01), None, 0.3, delivered=True) == 0.3  # time-priced: seconds are its price


async def test_call_spend_reserves_per_attempt_and_settles_once() -> None:
    ledger = InProcessSpendLedger(clock=lambda: NOW)
    spend = CallSpend(BUDGET, ledger)
    model = ModelConfig(id="m", name="m", deployments=())
    payload = {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 1000}  # 104 + 1000 tokens
    await spend.reserve(dep(prompt=100.0, completion=100.0), model, payload)
    assert spend.hold is not None and spend.hold.charged == to_nanos(1104 * 100 / 1e6)
    await spend.reserve(dep(prompt=200.0, completion=200.0), model, payload)  # the dearer fallback
    (state,) = await ledger.peek([BUDGET])
    assert state.held == to_nanos(1104 * 200 / 1e6)
    await spend.settle(0.05)
    await spend.settle(0.05)  # once only
    (state,) = await ledger.peek([BUDGET])
    assert (state.spent, state.held) == (to_nanos(0.05), 0)


async def test_the_402_says_what_was_spent_and_when_it_resets() -> None:
    ledger = InProcessSpendLedger(clock=lambda: NOW)
    hold = await ledger.reserve(BUDGET, NANOS)
    assert isinstance(hold, SpendHold)
    await ledger.settle(hold, to_nanos(0.98))
    denial = await ledger.reserve(BUDGET, to_nanos(0.05))
    assert isinstance(denial, SpendDenial)
    error = exceeded(denial, now=datetime.fromtimestamp(NOW, UTC))
    assert (error.status, error.code, error.category) == (402, "budget_exceeded", "billing")
    assert error.retry_after == 14 * 3600 and error.headers["retry-after"] == str(14 * 3600)
    assert "$0.9800 of $1 spent today (UTC)" in error.message
    assert "resets at 2026-12-04T00:00:00Z (in 14h0m)" in error.message
    assert error.resets_at == "2026-12-04T00:00:00Z"
