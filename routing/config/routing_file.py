"""routing.yaml (optional): strategy, local fraction, health checks, local and remote endpoint groups.

`RoutingFile` (routing_schema.py) checks keys, types and bounds; this module checks strategy names against
each other and endpoint groups against the models, and skips entries whose endpoint variable is unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from routing.config.envexpand import expand_tree
from routing.config.fields import strings
from routing.config.routing_schema import STRATEGY_KINDS, EndpointGroupFile, RoutingFile, StrategyFile
from routing.config.schema import (
    AffinityConfig,
    ConfigError,
    EndpointGroup,
    LocalFirstConfig,
    RoutingConfig,
    StrategyConfig,
)
from routing.config.validate import validate
from routing.config.yamlread import check_url, load_yaml

_GROUPS = ("local_deployment", "remote_deployment")
_DEFAULT_SCRAPE_TIMEOUT = LocalFirstConfig().scrape_timeout
_UNSET = "unset"  # stands in for an endpoint whose variable is unset, so the rest of its entry is still checked


def load_routing(path: Path, env: Mapping[str, str], model_ids: set[str]) -> RoutingConfig:
    """Parse routing.yaml; unset endpoint variables skip that entry with a warning instead of failing."""
    file = str(path)
    raw = load_yaml(path, "ROUTING_CONFIG")
    if raw is None:
        return RoutingConfig(source=file)
    missing: dict[str, tuple[str, ...]] = {}
    parsed = validate(RoutingFile, _placehold(expand_tree(raw, env, missing), missing), file)
    warnings: list[str] = []
    strategies = tuple(_strategy(file, name, s) for name, s in parsed.strategies.items())
    names = {s.name for s in strategies} | set(STRATEGY_KINDS)
    choices = f"use one of: {', '.join(sorted(names))}"
    if parsed.routing_strategy not in names:
        raise ConfigError(file, "routing_strategy", f"unknown strategy {parsed.routing_strategy!r}", choices)
    for model_id, name in parsed.model_strategies.items():
        if name not in names:
            raise ConfigError(file, f"model_strategies.{model_id}", f"unknown strategy {name!r}", choices)
        if model_id not in model_ids:
            warnings.append(f"{file}: model_strategies.{model_id}: no such model in models.yaml; ignored")
    return RoutingConfig(
        strategy=parsed.routing_strategy,
        local_fraction=parsed.routing_parameter.local_fraction,
        timeout=parsed.timeout,
        health_check=parsed.health_check,
        local=_groups(file, "local_deployment", parsed.local_deployment, missing, model_ids, warnings),
        remote=_groups(file, "remote_deployment", parsed.remote_deployment, missing, model_ids, warnings),
        strategies=strategies,
        model_strategies=tuple(parsed.model_strategies.items()),
        local_first=_local_first(file, parsed),
        affinity=AffinityConfig(**parsed.affinity.model_dump()),
        source=file,
        warnings=tuple(warnings),
    )


def _local_first(file: str, parsed: RoutingFile) -> LocalFirstConfig:
    lf = parsed.local_first
    if lf.scrape_timeout is not None and lf.scrape_timeout > lf.scrape_interval:
        raise ConfigError(
            file,
            "local_first.scrape_timeout",
            f"must not exceed scrape_interval ({lf.scrape_interval:g}), got {lf.scrape_timeout:g}",
            "lower `scrape_timeout` or raise `scrape_interval`",
        )
    timeout = min(_DEFAULT_SCRAPE_TIMEOUT, lf.scrape_interval) if lf.scrape_timeout is None else lf.scrape_timeout
    return LocalFirstConfig(**{**lf.model_dump(), "scrape_timeout": timeout})


def _placehold(data: Any, missing: Mapping[str, tuple[str, ...]]) -> Any:
    """Give endpoints whose variable is unset a stand-in value; `_groups` skips those entries after validation."""
    if not isinstance(data, dict):
        return data
    for key in _GROUPS:
        items = data.get(key)
        if isinstance(items, list):
            data[key] = [
                {**item, "endpoint": _UNSET} if isinstance(item, dict) and f"{key}[{i}].endpoint" in missing else item
                for i, item in enumerate(items)
            ]
    return data


def _strategy(file: str, name: str, s: StrategyFile) -> StrategyConfig:
    if s.kind not in STRATEGY_KINDS:
        raise ConfigError(
            file,
            f"strategies.{name}.kind",
            f"unknown strategy kind {s.kind!r}",
            f"use one of: {', '.join(STRATEGY_KINDS)}",
        )
    return StrategyConfig(name=name, kind=s.kind, local_fraction=s.local_fraction, weights=tuple(s.weights.items()))


def _groups(
    file: str,
    key: str,
    items: list[EndpointGroupFile],
    missing: Mapping[str, tuple[str, ...]],
    model_ids: set[str],
    warnings: list[str],
) -> tuple[EndpointGroup, ...]:
    groups: list[EndpointGroup] = []
    for i, item in enumerate(items):
        path = f"{key}[{i}]"
        unset = missing.get(f"{path}.endpoint")
        if unset:
            warnings.append(f"{file}: {path}.endpoint: {', '.join(unset)} is not set; entry skipped")
            continue
        endpoint = check_url(file, f"{path}.endpoint", item.endpoint)
        models = strings(item.models)
        if not models:
            raise ConfigError(file, f"{path}.models", "must list at least one model id", "add `models: [model-id]`")
        for model in models:
            if model not in model_ids:
                warnings.append(f"{file}: {path}.models: {model!r} is not in models.yaml; ignored")
        groups.append(EndpointGroup(endpoint=endpoint, models=models))
    return tuple(groups)
