"""The `local_first` plan of one call, pure: local deployments while one has room, least loaded first (power of
two choices on the combined load) or the call's affinity replica; when every local one is full, remote ones in
their weight order, local ones after them as the last fallback.

Priorities: a low-priority call sees local deployments full sooner and, when the spill budget is spent, holds
for local room (the executor waits up to ROUTER_QUEUE_TIMEOUT); a normal call over budget queues at the least
loaded local engine; a high-priority call sees them full latest and spills even past the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from routing.config.schema import DeploymentConfig, RoutingConfig
from routing.config.urls import redact_url
from routing.load import Load


@dataclass(frozen=True, slots=True)
class Candidate:
    """A local deployment as this call sees it: its load, whether it is full for the call's priority (`queue`,
    `kv`, or ""), and whether it can serve at all (health and circuit)."""

    dep: DeploymentConfig
    load: Load
    full: str = ""
    usable: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    """The deployments to try in order, why the first was chosen, and whether to hold for local room first."""

    order: tuple[DeploymentConfig, ...]
    reason: str  # local, affinity, spill:queue, spill:kv, fallback
    hold: bool = False
    affinity: str = ""  # hit, overflow ("" when the call has no affinity key or nothing local had room)


def plan(
    locals_: Sequence[Candidate],
    remotes: Sequence[DeploymentConfig],
    priority: str,
    budget_left: bool,
    affinity_order: Sequence[int] | None,
    draws: tuple[float, float],
) -> Plan:
    """The plan for one call; `remotes` are in weight order, `affinity_order` indexes `locals_` (None: no key),
    `draws` are two uniform numbers in [0, 1) for the power-of-two choice."""
    ranked = sorted(locals_, key=_rank)
    by_load = [c.dep for c in ranked]
    roomy = [c for c in locals_ if c.usable and not c.full]
    if roomy:
        affinity = ""
        if affinity_order is not None:
            chosen = next(locals_[i] for i in affinity_order if locals_[i].usable and not locals_[i].full)
            affinity = "hit" if locals_[affinity_order[0]] is chosen else "overflow"
        else:
            chosen = _two_choices(roomy, draws)
        rest = [c.dep for c in ranked if c in roomy and c is not chosen]
        tail = [c.dep for c in ranked if c not in roomy]
        return Plan((chosen.dep, *rest, *remotes, *tail), "affinity" if affinity else "local", affinity=affinity)
    if not remotes:
        return Plan(tuple(by_load), "local")
    usable = [c for c in ranked if c.usable]
    if not usable:
        return Plan((*remotes, *by_load), "fallback")
    if not budget_left and priority != "high":
        if priority == "low":
            return Plan(tuple(by_load), "local", hold=True)
        return Plan((*by_load, *remotes), "local")
    return Plan((*remotes, *by_load), f"spill:{usable[0].full}")


def _rank(c: Candidate) -> tuple[bool, bool, float, float]:
    return (not c.usable, bool(c.full), c.load.score, c.load.kv_usage)


def _two_choices(roomy: Sequence[Candidate], draws: tuple[float, float]) -> Candidate:
    """Power of two choices: two distinct deployments drawn at random, the less loaded of them."""
    n = len(roomy)
    if n == 1:
        return roomy[0]
    i = min(int(draws[0] * n), n - 1)
    j = min(int(draws[1] * (n - 1)), n - 2)
    if j >= i:
        j += 1
    return min(roomy[i], roomy[j], key=_rank)


def explain(routing: RoutingConfig, local: Sequence[DeploymentConfig]) -> list[str]:
    """`gateway check-config`'s words for a local_first model whose local deployments are `local`."""
    lf = routing.local_first
    budget = lf.spill_budget_usd_per_hour
    lines = [
        f"local_first: local while a local deployment has room (queue <= {lf.max_waiting}, "
        f"KV cache <= {lf.max_kv_usage:.0%}), least loaded of two; when all are full, spill to remote ones "
        f"in weight order until load is under {lf.resume_below:.0%} of both limits",
        "spill budget: "
        + ("none" if budget is None else f"{budget:g} USD/hour (low priority then waits, high may pass it)"),
    ]
    for dep in local:
        source = f"{dep.engine} metrics at {redact_url(dep.metrics_url)}" if dep.metrics_url else "no metrics_url"
        lines.append(
            f"load of {dep.name}: {source}, every {lf.scrape_interval:g}s"
            if dep.metrics_url
            else f"load of {dep.name}: {source}: in-flight count only"
        )
    return lines
