"""Load both config files into one GatewayConfig, applying seed 004's hard offload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from routing.config.beacon_env import beacon_models_from_env
from routing.config.flags import parse_flag
from routing.config.models_file import load_models
from routing.config.routing_file import load_routing
from routing.config.schema import ConfigError, GatewayConfig, ModelConfig, RoutingConfig
from routing.config.urls import endpoint_matches


def load_config(models_path: Path, routing_path: Path | None, env: Mapping[str, str]) -> GatewayConfig:
    """Read models.yaml and (if it exists) routing.yaml; raise ConfigError on anything malformed."""
    models, aliases, warnings = load_models(models_path, env)
    beacon, notes = beacon_models_from_env(env, models)
    if beacon:
        replaced = {m.id: m for m in beacon}
        models = [replaced.pop(m.id, m) for m in models] + list(replaced.values())
    warnings.extend(notes)
    models, offload_notes = hard_offload(models, env)
    warnings.extend(offload_notes)
    model_ids = {m.id for m in models}
    if routing_path is not None and routing_path.exists():
        routing = load_routing(routing_path, env, model_ids)
        warnings.extend(routing.warnings)
    else:
        routing = RoutingConfig()
    kept = {m.id for m in models}
    return GatewayConfig(
        models=tuple(models),
        routing=routing,
        aliases=tuple((a, t) for a, t in aliases if t in kept),
        warnings=tuple(warnings),
        models_source=str(models_path),
    )


def hard_offload(models: list[ModelConfig], env: Mapping[str, str]) -> tuple[list[ModelConfig], list[str]]:
    """OFFLOAD=1 removes the deployments LOCAL_BASE_URL names as an endpoint; a model left with none is dropped."""
    raw = env.get("OFFLOAD", "").strip()
    try:
        offload = parse_flag(raw) if raw else False
    except ValueError as exc:
        raise ConfigError(
            "environment", "OFFLOAD", f"{exc}, got {raw!r}", "set OFFLOAD=1 to offload, or unset it"
        ) from None
    if not offload:
        return models, []
    local = env.get("LOCAL_BASE_URL", "").strip()
    if not local:
        return models, ["OFFLOAD is set but LOCAL_BASE_URL is not; nothing offloaded"]
    kept: list[ModelConfig] = []
    notes: list[str] = []
    for model in models:
        remaining = tuple(d for d in model.deployments if not endpoint_matches(local, d.base_url))
        removed = len(model.deployments) - len(remaining)
        if removed:
            notes.append(f"OFFLOAD: removed {removed} local deployment(s) of {model.id}")
        if remaining:
            kept.append(replace(model, deployments=remaining))
        else:
            notes.append(f"OFFLOAD: {model.id} has no deployment left and is not served")
    return kept, notes
