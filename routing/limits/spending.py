"""One call's spend against its key's budget: a hold per attempt at the chosen deployment's price, settled once.

The executor reserves before each attempt (`CallSpend.reserve`): the call's prompt estimate plus its output cap
(`max_tokens`, else the model's `max_output_length`) at that deployment's price. A fallback re-reserves in one
step: the earlier attempt's hold is given up as the new one is taken, so a dearer deployment holds the difference
more and a cheaper one less. The call's ledger settles the hold when the call ends (`settled_usd`): the real cost,
nothing when no output reached the client, and the hold itself when a served call's upstream reported no usage.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from routing.config.schema import DeploymentConfig, ModelConfig
from routing.errors import BudgetExceeded
from routing.limits.ratelimit import estimate_tokens, prompt_messages
from routing.limits.spend import Budget, SpendDenial, SpendHold, SpendLedger, charge_for, iso, to_nanos, to_usd
from routing.price import SECONDS_PER_MTOK, per_million_tokens

_PERIOD_WORDS = {"day": "today (UTC)", "month": "this month (UTC)"}


def estimate_usd(dep: DeploymentConfig, prompt_tokens: int, output_tokens: int) -> float:
    """The most a call should cost at `dep`, priced as routing/cost.py bills it; a per-second deployment is
    assumed to serve at price.py's fixed speed."""
    pricing = dep.pricing
    tokens = (prompt_tokens * pricing.prompt + output_tokens * pricing.completion) / 1_000_000
    if tokens == 0 and dep.cost_per_second > 0:
        return (prompt_tokens + output_tokens) * SECONDS_PER_MTOK / 1_000_000 * dep.cost_per_second
    return tokens + pricing.request


def output_cap(model: ModelConfig, payload: dict[str, Any]) -> int:
    """The most output tokens the call may produce: its max_tokens (clamped already), else the model's cap."""
    value = payload.get("max_tokens") or payload.get("max_completion_tokens")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return min(int(value), model.max_output_length)
    return model.max_output_length


def settled_usd(
    dep: DeploymentConfig | None, usage: dict[str, Any] | None, cost: float, delivered: bool
) -> float | None:
    """What a finished call's hold settles to (None: the hold stands, the usage being unknown)."""
    if not delivered:
        return 0.0
    if usage is None and dep is not None and per_million_tokens(dep) > 0:
        return None
    return cost


class CallSpend:
    """The budget one call draws on, and the hold its current attempt keeps."""

    def __init__(self, budget: Budget, ledger: SpendLedger) -> None:
        self.budget, self.ledger = budget, ledger
        self.hold: SpendHold | None = None
        self._tokens: tuple[dict[str, Any], int, int] | None = None  # (payload, prompt, output) last estimated

    def _estimate(self, model: ModelConfig, payload: dict[str, Any]) -> tuple[int, int]:
        cached = self._tokens
        if cached is None or cached[0] is not payload:
            prompt = estimate_tokens(prompt_messages(payload), None, default_max=0)
            cached = self._tokens = (payload, prompt, output_cap(model, payload))
        return cached[1], cached[2]

    async def reserve(self, dep: DeploymentConfig, model: ModelConfig, payload: dict[str, Any]) -> None:
        """Hold this attempt's estimate in place of the last one's; BudgetExceeded (402) when it does not fit."""
        estimate = to_nanos(estimate_usd(dep, *self._estimate(model, payload)))
        before = self.hold
        if before is not None and before.charged == charge_for(estimate, self.budget.limit_nanos):
            return  # an equally priced fallback keeps the hold it has
        outcome = await self.ledger.reserve(self.budget, estimate, before)
        if isinstance(outcome, SpendDenial):
            raise exceeded(outcome)
        self.hold = outcome
        if before is not None and before.entry != outcome.entry:  # a new period began: the old hold goes
            await self.ledger.settle(before, 0)

    async def settle(self, usd: float | None) -> None:
        """Once, when the call ends: the real cost in USD, or None to let the hold stand."""
        hold, self.hold = self.hold, None
        if hold is not None:
            await self.ledger.settle(hold, hold.charged if usd is None else to_nanos(usd))


def exceeded(denial: SpendDenial, now: datetime | None = None) -> BudgetExceeded:
    """The 402 for a refused reservation: what was spent of what, what the call needed, when the budget resets."""
    state = denial.state
    budget = state.budget
    wait = max(1.0, (state.resets_at - (now or datetime.now(state.resets_at.tzinfo))).total_seconds())
    held = f" (and ${to_usd(state.held):.4f} held by calls in flight)" if state.held else ""
    message = (
        f"budget exceeded for key {budget.key!r}: ${to_usd(state.spent):.4f} of ${budget.limit_usd:g} spent "
        f"{_PERIOD_WORDS[budget.period]}{held}, and this call may cost up to ${to_usd(denial.needed):.4f}. "
        f"The budget resets at {iso(state.resets_at)} (in {_duration(wait)})"
    )
    return BudgetExceeded(message, wait, iso(state.resets_at))


def _duration(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return f"{days}d{hours}h{minutes}m" if days else f"{hours}h{minutes}m"
