"""routing.yaml (optional): strategy, local fraction, health checks, local and remote endpoint groups."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from routing.config.envexpand import expand_tree
from routing.config.schema import EndpointGroup, RoutingConfig, StrategyConfig
from routing.config.yamlread import Reader, check_url, load_yaml

STRATEGY_KINDS = ("fixed", "weighted", "cost", "latency")


def load_routing(path: Path, env: Mapping[str, str], model_ids: set[str]) -> RoutingConfig:
    """Parse routing.yaml; unset endpoint variables skip that entry with a warning instead of failing."""
    file = str(path)
    raw = load_yaml(path, "ROUTING_CONFIG")
    if raw is None:
        return RoutingConfig(source=file)
    missing: dict[str, tuple[str, ...]] = {}
    top = Reader(file, "", expand_tree(raw, env, missing))
    warnings: list[str] = []
    strategies = _strategies(top)
    names = {s.name for s in strategies} | set(STRATEGY_KINDS)
    strategy = top.text("routing_strategy", "fixed")
    if strategy not in names:
        raise top.fail("routing_strategy", f"unknown strategy {strategy!r}", f"use one of: {', '.join(sorted(names))}")
    params = top.child("routing_parameter")
    model_strategies: list[tuple[str, str]] = []
    per_model = top.child("model_strategies")
    for model_id, name in per_model.data.items():
        if str(name) not in names:
            raise per_model.fail(str(model_id), f"unknown strategy {name!r}", f"use one of: {', '.join(sorted(names))}")
        if str(model_id) not in model_ids:
            warnings.append(f"{file}: model_strategies.{model_id}: no such model in models.yaml; ignored")
        model_strategies.append((str(model_id), str(name)))
    return RoutingConfig(
        strategy=strategy,
        local_fraction=params.number("local_fraction", 0.5, 0.0, 1.0),
        timeout=top.number("timeout", 2.0, 0.0),
        health_check=top.number("health_check", 0.0, 0.0),
        local=_groups(top, "local_deployment", missing, model_ids, warnings),
        remote=_groups(top, "remote_deployment", missing, model_ids, warnings),
        strategies=strategies,
        model_strategies=tuple(model_strategies),
        source=file,
        warnings=tuple(warnings),
    )


def _strategies(top: Reader) -> tuple[StrategyConfig, ...]:
    section = top.child("strategies")
    result: list[StrategyConfig] = []
    for name in section.data:
        s = section.child(str(name))
        kind = s.text("kind", "fixed")
        if kind not in STRATEGY_KINDS:
            raise s.fail("kind", f"unknown strategy kind {kind!r}", f"use one of: {', '.join(STRATEGY_KINDS)}")
        weights = s.child("weights")
        result.append(
            StrategyConfig(
                name=str(name),
                kind=kind,
                local_fraction=s.number("local_fraction", 0.5, 0.0, 1.0),
                weights=tuple((str(k), weights.number(str(k), 0.0, 0.0)) for k in weights.data),
            )
        )
    return tuple(result)


def _groups(
    top: Reader, key: str, missing: dict[str, tuple[str, ...]], model_ids: set[str], warnings: list[str]
) -> tuple[EndpointGroup, ...]:
    groups: list[EndpointGroup] = []
    for i, item in enumerate(top.items(key)):
        g = Reader(top.file, f"{key}[{i}]", item)
        unset = missing.get(g.at("endpoint"))
        if unset:
            warnings.append(f"{top.file}: {g.at('endpoint')}: {', '.join(unset)} is not set; entry skipped")
            continue
        endpoint = check_url(g, "endpoint", g.text("endpoint"))
        models = g.strings("models")
        if not models:
            raise g.fail("models", "must list at least one model id", "add `models: [model-id]`")
        for model in models:
            if model not in model_ids:
                warnings.append(f"{top.file}: {g.at('models')}: {model!r} is not in models.yaml; ignored")
        groups.append(EndpointGroup(endpoint=endpoint, models=models))
    return tuple(groups)
