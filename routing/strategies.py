"""Strategies are pure: routing config and observed stats in, weights per deployment out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from routing.config.schema import DeploymentConfig, ModelConfig, RoutingConfig, StrategyConfig
from routing.config.urls import endpoint_matches
from routing.price import unit_price

LOCAL, REMOTE = "local", "remote"


@dataclass(frozen=True, slots=True)
class Observed:
    """What has been seen of a deployment: decaying averages of TTFT and of output tokens per second (None until
    measured)."""

    ttft_ms: float | None = None
    tokens_per_second: float | None = None


def side_of(dep: DeploymentConfig, routing: RoutingConfig) -> str | None:
    """`local` / `remote` when routing.yaml names this deployment for its model, else None."""
    for side, groups in ((LOCAL, routing.local), (REMOTE, routing.remote)):
        for group in groups:
            if dep.model_id in group.models and endpoint_matches(group.endpoint, dep.base_url):
                return side
    return None


def normalized(weights: Sequence[float]) -> list[float]:
    total = sum(w for w in weights if w > 0)
    if total <= 0:
        return [1.0 / len(weights)] * len(weights) if weights else []
    return [max(w, 0.0) / total for w in weights]


def configured(model: ModelConfig) -> list[float]:
    """The models.yaml weights, normalised over the model's deployments."""
    return normalized([d.weight for d in model.deployments])


def fixed(model: ModelConfig, routing: RoutingConfig, local_fraction: float) -> list[float]:
    """Seed 002: named local deployments share local_fraction, named remote ones the rest.

    Deployments routing.yaml does not name keep their models.yaml share; the named ones split what is left.
    """
    base = configured(model)
    sides = [side_of(d, routing) for d in model.deployments]
    locals_ = [i for i, s in enumerate(sides) if s == LOCAL]
    remotes = [i for i, s in enumerate(sides) if s == REMOTE]
    if not locals_ and not remotes:
        return base
    free = 1.0 - sum(base[i] for i, s in enumerate(sides) if s is None)
    if not locals_ or not remotes:
        local_fraction = 1.0 if locals_ else 0.0
    weights = list(base)
    for group, share in ((locals_, local_fraction), (remotes, 1.0 - local_fraction)):
        for i in group:
            weights[i] = free * share / len(group)
    return weights


def weighted(model: ModelConfig, strategy: StrategyConfig) -> list[float]:
    """As configured: strategy weights by deployment name or provider, else models.yaml weights.

    A key is one share: a provider's weight is split among the deployments it covers by their models.yaml
    weights (equally when those are all zero), so `{golem: 70, modal: 30}` stays 70/30 with two Golem nodes.
    A deployment named in the table takes its own entry, not its provider's.
    """
    table = dict(strategy.weights)
    if not table:
        return configured(model)
    keys = [d.name if d.name in table else d.provider if d.provider in table else None for d in model.deployments]
    weights = [0.0] * len(model.deployments)
    for key in {k for k in keys if k is not None}:
        _spread(model, [i for i, k in enumerate(keys) if k == key], table[key], weights)
    return normalized(weights)


def cheapest_first(model: ModelConfig, observed: Mapping[str, Observed]) -> list[float]:
    """All traffic to the cheapest deployments, shared by their models.yaml weights; the rest are fallbacks.

    Equally cheap deployments share rather than race on latency: a latency tie-break would starve the
    untried one, which then never gets measured. `observed` is accepted for a uniform strategy signature.
    """
    if not model.deployments:
        return []
    prices = [unit_price(d) for d in model.deployments]
    low = min(prices)
    weights = [0.0] * len(prices)
    _spread(model, [i for i, p in enumerate(prices) if math.isclose(p, low, rel_tol=1e-9)], 1.0, weights)
    return weights


def fastest_first(model: ModelConfig, observed: Mapping[str, Observed]) -> list[float]:
    """All traffic to the lowest observed TTFT; unmeasured deployments are not assumed fastest."""
    if not any(observed.get(d.key, Observed()).ttft_ms is not None for d in model.deployments):
        return configured(model)
    order = sorted(
        range(len(model.deployments)),
        key=lambda i: (_latency_key(model.deployments[i], observed), unit_price(model.deployments[i])),
    )
    return _one_hot(len(model.deployments), order[0])


def _spread(model: ModelConfig, group: list[int], total: float, weights: list[float]) -> None:
    """Share total among the deployments at indices group by their models.yaml weights (equally if all zero)."""
    for i, share in zip(group, normalized([model.deployments[i].weight for i in group]), strict=True):
        weights[i] = total * share


def _latency_key(dep: DeploymentConfig, observed: Mapping[str, Observed]) -> float:
    ttft = observed.get(dep.key, Observed()).ttft_ms
    return float("inf") if ttft is None else ttft


def _one_hot(n: int, index: int) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(n)]
