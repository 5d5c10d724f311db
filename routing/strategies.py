"""Strategies are pure: routing config and observed stats in, weights per deployment out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from routing.config import DeploymentConfig, ModelConfig, RoutingConfig, StrategyConfig
from routing.loader import normalize_origin

LOCAL, REMOTE = "local", "remote"


@dataclass(frozen=True, slots=True)
class Observed:
    """What has been seen of a deployment: decaying average TTFT (None until measured)."""

    ttft_ms: float | None = None


def endpoint_matches(endpoint: str, base_url: str) -> bool:
    """A routing.yaml endpoint names a deployment when it equals its base URL or that URL's origin."""
    e, b = normalize_origin(endpoint), normalize_origin(base_url)
    return b == e or b.startswith(e + "/")


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
    """As configured: strategy weights by deployment name or provider, else models.yaml weights."""
    table = dict(strategy.weights)
    if not table:
        return configured(model)
    return normalized([table.get(d.name, table.get(d.provider, 0.0)) for d in model.deployments])


def unit_price(dep: DeploymentConfig) -> float:
    """A comparable price: USD per 1M prompt+completion tokens, or per-second cost scaled alike."""
    per_token = dep.pricing.prompt + dep.pricing.completion
    return per_token if per_token > 0 else dep.cost_per_second * 1e4


def cheapest_first(model: ModelConfig, observed: Mapping[str, Observed]) -> list[float]:
    """All traffic to the cheapest deployment (ties by latency); the rest stay as zero-weight fallbacks."""
    order = sorted(
        range(len(model.deployments)),
        key=lambda i: (unit_price(model.deployments[i]), _latency_key(model.deployments[i], observed)),
    )
    return _one_hot(len(model.deployments), order[0]) if order else []


def fastest_first(model: ModelConfig, observed: Mapping[str, Observed]) -> list[float]:
    """All traffic to the lowest observed TTFT; unmeasured deployments are not assumed fastest."""
    if not any(observed.get(d.key, Observed()).ttft_ms is not None for d in model.deployments):
        return configured(model)
    order = sorted(
        range(len(model.deployments)),
        key=lambda i: (_latency_key(model.deployments[i], observed), unit_price(model.deployments[i])),
    )
    return _one_hot(len(model.deployments), order[0])


def _latency_key(dep: DeploymentConfig, observed: Mapping[str, Observed]) -> float:
    ttft = observed.get(dep.key, Observed()).ttft_ms
    return float("inf") if ttft is None else ttft


def _one_hot(n: int, index: int) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(n)]
