"""`health_timeout` per deployment in models.yaml: validated at load, used by that deployment's probe."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from routing.config.load import load_config
from routing.config.schema import ConfigError, GatewayConfig
from routing.upstream.health import probe_target, probe_targets


def load(tmp_path: Path, route: list[dict[str, object]], routing: dict[str, object] | None = None) -> GatewayConfig:
    models, routing_path = tmp_path / "models.yaml", tmp_path / "routing.yaml"
    models.write_text(yaml.safe_dump({"models": [{"id": "m", "route": route}]}))
    routing_path.write_text(yaml.safe_dump(routing or {"timeout": 3, "health_check": 10}))
    return load_config(models, routing_path, {})


def vllm(name: str, **extra: object) -> dict[str, object]:
    return {"kind": "vllm", "name": name, "base_url": f"http://{name}:8000/v1", **extra}


def test_per_deployment_timeout_overrides_the_routing_timeout(tmp_path: Path) -> None:
    config = load(tmp_path, [vllm("a", health_timeout=0.2), vllm("b"), vllm("c", health_timeout="7")])
    deps = {d.name: d for d in config.models[0].deployments}
    assert (deps["a"].health_timeout, deps["b"].health_timeout, deps["c"].health_timeout) == (0.2, 0.0, 7.0)
    targets = {t.key: t.timeout for t in probe_targets(config.models[0].deployments, 10.0, config.routing.timeout)}
    assert targets == {"m/a": 0.2, "m/b": 3.0, "m/c": 7.0}


def test_shorthand_model_takes_health_timeout(tmp_path: Path) -> None:
    models, routing = tmp_path / "models.yaml", tmp_path / "routing.yaml"
    models.write_text(
        yaml.safe_dump({"models": [{"id": "m", "provider": "vllm", "base_url": "http://h/v1", "health_timeout": 1.5}]})
    )
    (dep,) = load_config(models, routing, {}).models[0].deployments
    target = probe_target(dep, 10.0, 5.0)
    assert target is not None and target.timeout == 1.5


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (-1, "models[0].route[0].health_timeout: must be >= 0"),
        ("soon", "models[0].route[0].health_timeout: must be a number"),
        (0.001, "models[0].route[0].health_timeout: must be 0 (use routing.yaml timeout) or >= 0.01"),
    ],
)
def test_bad_health_timeout_names_the_field(tmp_path: Path, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, [vllm("a", health_timeout=value)])
    assert fragment in str(info.value) and "Fix:" in str(info.value)
