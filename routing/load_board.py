"""The live side of `local_first`: per-deployment load verdicts with hysteresis, whether each model is spilling
and since when, and the spill budget. Each call's plan is the pure `local_first.plan` over this state.

The verdicts are refreshed on every plan from the scraper's latest state and the gateway's in-flight counts, so
no timer is involved and nothing runs between calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from routing.affinity import affinity_key, rendezvous
from routing.budget import SpendWindow
from routing.call import Call
from routing.config.schema import DeploymentConfig, RoutingConfig
from routing.cost import call_cost
from routing.errors import NoDeploymentAvailable
from routing.limits.admission import Guards
from routing.load import Load, ScrapeState, estimate, full_for, latch
from routing.local_first import Candidate, Plan, plan
from routing.manager import ModelRoute
from routing.strategies import LOCAL

ScrapeOf = Callable[[str], ScrapeState | None]
HOLD_POLL = 0.02  # seconds between looks for local room while a low-priority call holds


class LoadBoard:
    """Load-aware planning for `local_first` models; one per process, owned by the lifespan."""

    def __init__(
        self,
        routing: RoutingConfig,
        scrape_of: ScrapeOf,
        guards: Guards,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_affinity: Callable[[str], None] | None = None,
        on_budget: Callable[[float], None] | None = None,
    ) -> None:
        self._scrape_of, self._guards, self._clock, self._wall = scrape_of, guards, clock, wall
        self._on_affinity, self._on_budget = on_affinity, on_budget
        self._latched: dict[str, str] = {}
        self._spilling: dict[str, float] = {}  # model id -> unix time spilling began
        self.replace(routing)

    def replace(self, routing: RoutingConfig) -> None:
        """A reloaded routing.yaml: new limits and budget cap; the spend so far still counts."""
        self.routing = routing
        limit = routing.local_first.spill_budget_usd_per_hour
        old: SpendWindow | None = getattr(self, "budget", None)
        self.budget = SpendWindow(limit) if old is None else old.with_limit(limit)

    async def decide(
        self, route: ModelRoute, call: Call, payload: Mapping[str, Any], draw: Callable[[], float], wait: float
    ) -> Plan:
        """The call's plan; a low-priority call over the spill budget holds for local room up to `wait` seconds
        (ROUTER_QUEUE_TIMEOUT), then is refused with 503."""
        until = self._clock() + wait
        while True:
            decided = self.plan(route, call, payload, (draw(), draw()))
            if not decided.hold:
                return decided
            if self._clock() >= until:
                raise NoDeploymentAvailable(
                    f"every local deployment of {route.model.id} is full and the spill budget is spent; "
                    f"a low-priority call waited {wait:g}s for room",
                    1.0,
                )
            await asyncio.sleep(HOLD_POLL)

    def plan(self, route: ModelRoute, call: Call, payload: Mapping[str, Any], draws: tuple[float, float]) -> Plan:
        """The order to try `route`'s deployments in for this call, and why."""
        limits = self.routing.local_first
        now = self._clock()
        locals_: list[Candidate] = []
        remotes: list[tuple[bool, float, int, DeploymentConfig]] = []  # health-down ones last, then by weight
        for i, entry in enumerate(route.entries):
            dep = entry.deployment
            if entry.side != LOCAL:
                remotes.append((not entry.available, -dep.weight, i, dep))
                continue
            load = self._load(dep, now)
            verdict = self._latched[dep.key] = latch(self._latched.get(dep.key, ""), load, limits)
            full = full_for(verdict, load, limits, call.priority) or ("" if self._guards.has_room(dep) else "queue")
            locals_.append(Candidate(dep, load, full, entry.available and self._guards.available(dep)))
        self._track_spilling(route.model.id, [c for c in locals_ if c.usable], bool(remotes))
        order = None
        affinity = self.routing.affinity
        if affinity.enabled and len(locals_) > 1:
            key = affinity_key(call.session, payload, affinity.prefix_chars)
            order = rendezvous(key, [c.dep.key for c in locals_]) if key else None
        decided = plan(locals_, [r[-1] for r in sorted(remotes)], call.priority, self.budget.left(now), order, draws)
        if decided.affinity and self._on_affinity is not None:
            self._on_affinity(decided.affinity)
        return decided

    def _load(self, dep: DeploymentConfig, now: float) -> Load:
        interval = self.routing.local_first.scrape_interval
        return estimate(self._scrape_of(dep.key), self._guards.in_flight(dep.key), now, interval)

    def _track_spilling(self, model: str, usable: list[Candidate], has_remotes: bool) -> None:
        spilling = has_remotes and bool(usable) and all(self._latched.get(c.dep.key) for c in usable)
        if not spilling:
            self._spilling.pop(model, None)
        elif model not in self._spilling:
            self._spilling[model] = self._wall()

    def charge_call(self, call: Call, dep: DeploymentConfig, seconds: float) -> None:
        """A served call: if it spilled, its cost counts against the budget."""
        if call.routing_reason.startswith("spill:"):
            self.charge(call_cost(dep.pricing, call.usage, seconds=seconds, per_second=dep.cost_per_second))

    def charge(self, usd: float) -> None:
        """A spilled call's cost, counted against the budget."""
        now = self._clock()
        self.budget.add(now, usd)
        self.publish_budget(now)

    def publish_budget(self, now: float | None = None) -> None:
        """Report the budget's share used; called on a timer too, since the hour's window also empties with no calls."""
        if self._on_budget is not None:
            self._on_budget(self.budget.used(self._clock() if now is None else now))

    def describe(self, dep: DeploymentConfig) -> dict[str, Any]:
        """For /routing: the scraped figures and their age, the estimate, whether it is full and why."""
        state = self._scrape_of(dep.key)
        load = self._load(dep, self._clock())
        verdict = latch(self._latched.get(dep.key, ""), load, self.routing.local_first)  # as a call now would see it
        sample = state.sample if state is not None else None
        hit_rate = None
        if sample is not None and sample.prefix_queries:
            hit_rate = round((sample.prefix_hits or 0.0) / sample.prefix_queries, 3)
        return {
            "scraped": None
            if sample is None
            else {
                "running": sample.running,
                "waiting": sample.waiting,
                "kv_usage": sample.kv_usage,
                "prefix_cache_hit_rate": hit_rate,
            },
            "scrape_age_s": None if load.age is None else round(load.age, 2),
            "scrape_error": state.error if state is not None else "not scraped yet",
            "load_known": load.known,
            "estimated_waiting": round(load.waiting, 1),
            "full": bool(verdict),
            "full_reason": verdict,
        }

    def model_state(self, model: str) -> dict[str, Any]:
        since = self._spilling.get(model)
        return {"spilling": since is not None, "spilling_since": since}

    def budget_state(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "spill_budget_usd_per_hour": self.budget.limit,
            "spill_spent_usd_last_hour": round(self.budget.spent(now), 6),
            "spill_budget_used": round(self.budget.used(now), 4),
        }
