"""Spend budgets per client key: USD per UTC day or month, reserved at admission and settled to the real cost.

Money is held in integer nano-USD, so the in-process and Redis ledgers add up exactly alike. A period is a UTC
day (from 00:00) or a UTC month (from the 1st, 00:00); its ledger entry is named by the period's start, so a new
period starts empty and an old one is forgotten once it has expired (`EXPIRE_MARGIN` after its end, longer than a
call may run, so a call reserved just before midnight still settles into the entry it reserved from).

The rule (`fits`): a reservation is refused once the period's spend has reached the limit, or when spend plus
what other calls hold plus this call's charge would pass it. The charge is the call's estimate (prompt estimate
plus its output cap at the deployment's price), capped at the whole limit: a call dearer than the whole budget
is admitted only into an untouched period (else a small budget would refuse it forever), alone. While real costs
stay within their estimates, spend therefore never passes the limit plus one call's estimate.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

Period = Literal["day", "month"]
NANOS = 1_000_000_000
EXPIRE_MARGIN = 3600  # seconds an entry outlives its period: a call reserved before the reset settles into it
_SPEC = re.compile(r"^\$?\s*(\d+(?:\.\d+)?)\s*/\s*(day|month)$")


@dataclass(frozen=True, slots=True)
class Budget:
    """USD a client key (by its name) may spend per UTC day or month."""

    key: str
    period: Period
    limit_usd: float

    @property
    def limit_nanos(self) -> int:
        return to_nanos(self.limit_usd)


def parse_budget(key: str, spec: str) -> Budget:
    """`50/day`, `500/month`, `$12.5/day`; ValueError says what is wrong."""
    match = _SPEC.match(spec.strip().lower())
    if match is None:
        raise ValueError(f"budget {spec!r} for {key!r}: expected <USD>/day or <USD>/month, e.g. 50/day")
    limit = float(match.group(1))
    if not 0 < limit < 1e6:
        raise ValueError(f"budget {spec!r} for {key!r}: the amount must be > 0 and < 1000000 USD")
    period: Period = "day" if match.group(2) == "day" else "month"
    return Budget(key, period, limit)


def to_nanos(usd: float) -> int:
    """USD as whole nano-USD, rounded up (a reservation must not under-count)."""
    return max(0, math.ceil(usd * NANOS - 1e-6))


def to_usd(nanos: int) -> float:
    return round(nanos / NANOS, 9)


def period_bounds(period: Period, now: float) -> tuple[datetime, datetime]:
    """The UTC period holding unix time `now`: [start, end)."""
    at = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def entry_name(budget: Budget, start: datetime) -> str:
    """The ledger entry of one key's period, named by the period's start (`team-a:day:20261203`)."""
    return f"{budget.key}:{budget.period}:{start:%Y%m%d}"


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`: `2026-12-04T00:00:00Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def charge_for(estimate: int, limit: int) -> int:
    """What a reservation holds: its estimate, at most the whole limit (module docstring)."""
    return min(max(estimate, 0), limit)


def fits(spent: int, held: int, charge: int, limit: int) -> bool:
    """Whether a reservation of `charge` is admitted beside `spent` and what other calls `held`."""
    return spent < limit and spent + held + charge <= limit


@dataclass(frozen=True, slots=True)
class SpendHold:
    """Admitted: `charged` nano-USD held in entry `entry` until settled; charged 0 with no entry holds nothing."""

    budget: Budget
    entry: str
    charged: int
    expire_at: int  # unix seconds: when the entry may go


@dataclass(frozen=True, slots=True)
class SpendState:
    """One key's period as it stands: settled spend, what calls in flight hold, when it resets."""

    budget: Budget
    spent: int
    held: int
    resets_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.budget.limit_nanos - self.spent)

    def row(self) -> dict[str, object]:
        """The dashboard's (and /stats') row."""
        return {
            "key": self.budget.key,
            "period": self.budget.period,
            "limit_usd": self.budget.limit_usd,
            "spent_usd": to_usd(self.spent),
            "remaining_usd": to_usd(self.remaining),
            "resets_at": iso(self.resets_at),
        }


@dataclass(frozen=True, slots=True)
class SpendDenial:
    """Refused: the period as it stood, and what this call would have needed."""

    state: SpendState
    needed: int


class SpendLedger(Protocol):
    """Atomic reserve-then-settle of spend against budgets."""

    async def reserve(
        self, budget: Budget, estimate: int, replacing: SpendHold | None = None, now: float | None = None
    ) -> SpendHold | SpendDenial:
        """Hold `estimate` nano-USD, or refuse. `replacing`: the same call's earlier hold, given up in the same step
        when it is in the same period's entry (the caller settles one from another period)."""
        ...

    async def settle(self, hold: SpendHold, actual: int) -> None:
        """The call is over: drop the hold and add what it really cost."""
        ...

    async def peek(self, budgets: Sequence[Budget], now: float | None = None) -> list[SpendState]: ...

    async def close(self) -> None: ...


def unheld(budget: Budget) -> SpendHold:
    """A hold of nothing (the ledger's store was down and it failed open): settling it changes nothing."""
    return SpendHold(budget, "", 0, 0)


class InProcessSpendLedger:
    """Budgets held in this process: exact for one worker (with several, each would grant the whole budget; use
    the Redis ledger). Every operation is synchronous inside, so it is atomic on one event loop."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._entries: dict[str, list[int]] = {}  # entry -> [spent, held, expire_at]

    def _entry(self, name: str, expire_at: int) -> list[int]:
        entry = self._entries.get(name)
        if entry is None:
            now = self._clock()
            for old in [n for n, e in self._entries.items() if e[2] < now]:  # new entries are rare: sweep then
                del self._entries[old]
            entry = self._entries[name] = [0, 0, expire_at]
        return entry

    async def reserve(
        self, budget: Budget, estimate: int, replacing: SpendHold | None = None, now: float | None = None
    ) -> SpendHold | SpendDenial:
        now = self._clock() if now is None else now
        start, end = period_bounds(budget.period, now)
        name, expire_at = entry_name(budget, start), int(end.timestamp()) + EXPIRE_MARGIN
        entry = self._entry(name, expire_at)
        old = replacing.charged if replacing is not None and replacing.entry == name else 0
        held = max(0, entry[1] - old)
        charge = charge_for(estimate, budget.limit_nanos)
        if not fits(entry[0], held, charge, budget.limit_nanos):
            return SpendDenial(SpendState(budget, entry[0], held, end), charge)
        entry[1] = held + charge
        return SpendHold(budget, name, charge, expire_at)

    async def settle(self, hold: SpendHold, actual: int) -> None:
        if not hold.entry:
            return
        entry = self._entry(hold.entry, hold.expire_at)
        entry[1] = max(0, entry[1] - hold.charged)
        entry[0] += max(0, actual)

    async def peek(self, budgets: Sequence[Budget], now: float | None = None) -> list[SpendState]:
        now = self._clock() if now is None else now
        states = []
        for budget in budgets:
            start, end = period_bounds(budget.period, now)
            spent, held, _ = self._entries.get(entry_name(budget, start), (0, 0, 0))
            states.append(SpendState(budget, spent, held, end))
        return states

    async def close(self) -> None:
        self._entries.clear()
