"""The RoutingManager turns config, strategy and live deployment state into the weights in use."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from adapters.kinds import kind_spec
from routing import strategies
from routing.config.schema import DeploymentConfig, GatewayConfig, ModelConfig, StrategyConfig
from routing.strategies import Observed

_EWMA_ALPHA = 0.2


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One deployment of a model with the weight routing gives it now."""

    deployment: DeploymentConfig
    weight: float
    strategy_weight: float
    side: str
    available: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A model and its usable deployments (enabled ones only), weights summing to 1 over available ones."""

    model: ModelConfig
    entries: tuple[RouteEntry, ...]
    strategy: str
    kind: str = ""  # the strategy's kind: fixed, weighted, cost, latency, local_first

    @property
    def weights(self) -> list[float]:
        return [e.weight for e in self.entries]


class RoutingManager:
    """Holds the routing table; every change builds a new immutable table, so in-flight calls keep theirs."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._local_fraction = config.routing.local_fraction
        self._down: dict[str, str] = {}
        self._observed: dict[str, Observed] = {}
        self._index: dict[str, ModelRoute] = {}
        self._routes: tuple[ModelRoute, ...] = ()
        self._last_latency_rebuild = 0.0
        self.version = 0
        self.rebuild()

    @property
    def config(self) -> GatewayConfig:
        return self._config

    @property
    def local_fraction(self) -> float:
        return self._local_fraction

    def route(self, name: str) -> ModelRoute | None:
        """The route for a public model id or alias."""
        return self._index.get(name)

    def routes(self) -> tuple[ModelRoute, ...]:
        """Every served model (at least one enabled deployment), in config order."""
        return self._routes

    def deployments(self) -> list[DeploymentConfig]:
        """Every deployment of every model, enabled or not."""
        return [d for m in self._config.models for d in m.deployments]

    def set_local_fraction(self, value: float) -> None:
        """Soft offload: change the local share at run time."""
        if not 0.0 <= value <= 1.0:
            raise ValueError("local_fraction must be between 0 and 1")
        self._local_fraction = value
        self.rebuild()

    def set_available(self, key: str, available: bool, reason: str = "") -> bool:
        """Health or circuit state changed for a deployment; True when the table changed."""
        if available == (key not in self._down) and (available or self._down.get(key) == reason):
            return False
        if available:
            self._down.pop(key, None)
        else:
            self._down[key] = reason or "unavailable"
        self.rebuild()
        return True

    def unavailable(self) -> Mapping[str, str]:
        """Deployments taken out of routing (key -> reason), e.g. by a failed health check."""
        return dict(self._down)

    def observe_ttft(self, key: str, ttft_ms: float) -> None:
        """Feed the decaying TTFT average that the latency strategy reads."""
        seen = self._observed.get(key, Observed())
        self._observed[key] = replace(seen, ttft_ms=_decayed(seen.ttft_ms, ttft_ms))
        now = time.monotonic()
        if now - self._last_latency_rebuild >= 1.0 and any(r.strategy == "latency" for r in self._routes):
            self._last_latency_rebuild = now
            self.rebuild()

    def observe_throughput(self, key: str, tokens_per_second: float) -> None:
        """Feed the decaying output-speed average that `provider.sort: throughput` reads."""
        seen = self._observed.get(key, Observed())
        self._observed[key] = replace(seen, tokens_per_second=_decayed(seen.tokens_per_second, tokens_per_second))

    def observed(self) -> Mapping[str, Observed]:
        return self._observed

    def replace_config(self, config: GatewayConfig) -> None:
        """Swap in a reloaded config; calls already running keep the route they were given."""
        self._config = config
        self._local_fraction = config.routing.local_fraction
        # a deployment that left the config must not come back down if it is added again later
        keys = {d.key for d in self.deployments()}
        self._down = {k: v for k, v in self._down.items() if k in keys}
        self.rebuild()

    def rebuild(self) -> None:
        routes = tuple(r for r in (self._build(m) for m in self._config.models) if r.entries)
        index = {r.model.id: r for r in routes}
        for alias, target in self._config.aliases:
            if target in index:
                index[alias] = index[target]
        self._routes, self._index = routes, index
        self.version += 1

    def strategy_for(self, model: ModelConfig) -> tuple[str, StrategyConfig]:
        routing = self._config.routing
        name = model.strategy or dict(routing.model_strategies).get(model.id) or routing.strategy
        named = {s.name: s for s in routing.strategies}
        if name in named:
            return name, named[name]
        return name, StrategyConfig(name=name, kind=name, local_fraction=self._local_fraction)

    def _build(self, model: ModelConfig) -> ModelRoute:
        enabled = model.enabled_deployments
        if not enabled:
            return ModelRoute(model=model, entries=(), strategy="")
        name, spec = self.strategy_for(replace(model, deployments=enabled))
        raw = self._weights(replace(model, deployments=enabled), spec)
        up = tuple(d for d in enabled if d.key not in self._down)
        # The strategy runs again over the deployments that can serve, so a group keeps its share when a member
        # is down: with {golem: 70, modal: 30} and one of two Golem nodes failing, the other carries the 70%.
        by_key = dict(zip((d.key for d in up), self._weights(replace(model, deployments=up), spec), strict=True))
        live = [by_key.get(d.key, 0.0) for d in enabled]
        if sum(live) <= 0 and up:
            live = [0.0 if d.key in self._down else 1.0 for d in enabled]
        final = strategies.normalized(live) if sum(live) > 0 else [0.0] * len(enabled)
        routing = self._config.routing
        entries = tuple(
            RouteEntry(
                deployment=d,
                weight=w,
                strategy_weight=s,
                side=strategies.side_of(d, routing) or _default_side(d),
                available=d.key not in self._down,
                reason=self._down.get(d.key, ""),
            )
            for d, w, s in zip(enabled, final, raw, strict=True)
        )
        return ModelRoute(model=model, entries=entries, strategy=name, kind=spec.kind)

    def _weights(self, scoped: ModelConfig, spec: StrategyConfig) -> list[float]:
        """The strategy's weights for these deployments (config and observed stats in, weights out)."""
        if not scoped.deployments:
            return []
        routing = self._config.routing
        if spec.kind == "weighted":
            return strategies.weighted(scoped, spec)
        if spec.kind == "cost":
            return strategies.cheapest_first(scoped, self._observed)
        if spec.kind == "latency":
            return strategies.fastest_first(scoped, self._observed)
        if spec.kind == "local_first":
            # the weights are the baseline (every call local); the executor's per-call plan spills on load
            return strategies.fixed(scoped, routing, 1.0)
        fraction = self._local_fraction if spec.name == routing.strategy else spec.local_fraction
        return strategies.fixed(scoped, routing, fraction)

    def snapshot(self) -> dict[str, Any]:
        """The weights in use per model and deployment, for /routing (no URLs with secrets, no keys)."""
        models: dict[str, Any] = {}
        for model in self._config.models:
            route = self._index.get(model.id)
            live = {e.deployment.name: e for e in route.entries} if route else {}
            rows = []
            for dep in model.deployments:
                entry = live.get(dep.name)
                rows.append(
                    {
                        "deployment": dep.name,
                        "provider": dep.provider,
                        "kind": dep.kind,
                        "side": entry.side if entry else _default_side(dep),
                        "weight": round(entry.weight, 6) if entry else 0.0,
                        "percent": f"{(entry.weight if entry else 0.0) * 100:.1f}%",
                        "strategy_weight": round(entry.strategy_weight, 6) if entry else 0.0,
                        "enabled": dep.enabled,
                        "available": bool(entry and entry.available),
                        "reason": dep.disabled_reason if not dep.enabled else (entry.reason if entry else ""),
                    }
                )
            models[model.id] = {
                "strategy": route.strategy if route else None,
                "kind": route.kind if route else None,
                "aliases": list(model.aliases),
                "served": route is not None,
                "deployments": rows,
            }
        return {
            "version": self.version,
            "strategy": self._config.routing.strategy,
            "local_fraction": self._local_fraction,
            "models": models,
        }


def _default_side(dep: DeploymentConfig) -> str:
    spec = kind_spec(dep.kind)
    return strategies.LOCAL if spec is not None and spec.local else strategies.REMOTE


def _decayed(old: float | None, new: float) -> float:
    return new if old is None else old + _EWMA_ALPHA * (new - old)
