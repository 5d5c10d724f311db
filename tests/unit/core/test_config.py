from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from routing.config.envexpand import expand
from routing.config.load import load_config
from routing.config.schema import ConfigError


def write(tmp: Path, models: object, routing: object | None = None) -> tuple[Path, Path]:
    m, r = tmp / "models.yaml", tmp / "routing.yaml"
    m.write_text(models if isinstance(models, str) else yaml.safe_dump(models))
    if routing is not None:
        r.write_text(routing if isinstance(routing, str) else yaml.safe_dump(routing))
    return m, r


def one(route: list[dict[str, object]], **extra: object) -> dict[str, object]:
    return {"models": [{"id": "m", "route": route, **extra}]}


def test_expand_default_and_missing() -> None:
    result = expand("${A}/${B:-bee}/${C}", {"A": "x"})
    assert result.value == "x/bee/"
    assert result.missing == ("C",)


def test_weights_normalised_and_aliases_resolve(tmp_path: Path) -> None:
    m, r = write(
        tmp_path,
        one([{"kind": "mock", "name": "a", "weight": 3}, {"kind": "mock", "name": "b", "weight": 1}], aliases=["mm"]),
    )
    config = load_config(m, r, {})
    from routing.manager import RoutingManager

    route = RoutingManager(config).route("mm")
    assert route is not None and route.model.id == "m"
    assert [round(w, 3) for w in route.weights] == [0.75, 0.25]


@pytest.mark.parametrize(
    ("models", "fragment"),
    [
        (one([{"kind": "nope", "base_url": "http://x"}]), "models[0].route[0].kind: unknown kind 'nope'"),
        (
            one([{"kind": "openai", "base_url": "http://x", "api_key": "k", "weight": -1}]),
            "route[0].weight: must be >= 0",
        ),
        (one([{"kind": "openai", "base_url": "ftp://x", "api_key": "k"}]), "route[0].base_url: must be an http"),
        (one([{"kind": "openai", "base_url": "http://x", "api_key": "k", "weight": "heavy"}]), "must be a number"),
        (
            {"models": [{"id": "a", "provider": "mock"}, {"id": "b", "provider": "mock", "aliases": ["a"]}]},
            "'a' is already used by models[0]",
        ),
        ({"models": [{"id": "a", "provider": "mock"}, {"id": "a", "provider": "mock"}]}, "already used"),
        ({"models": []}, "models: must list at least one model"),
        ("models: [\n  - id: a\n  bad", "malformed YAML at line"),
    ],
)
def test_bad_models_file_names_file_field_and_fix(tmp_path: Path, models: object, fragment: str) -> None:
    m, r = write(tmp_path, models)
    with pytest.raises(ConfigError) as info:
        load_config(m, r, {})
    message = str(info.value)
    assert str(m) in message
    assert fragment in message
    assert "Fix:" in message or "malformed" in message or "already used" in message


def test_unset_key_disables_deployment_not_startup(tmp_path: Path) -> None:
    m, r = write(tmp_path, one([{"kind": "deepseek", "api_key": "${DEEPSEEK_API_KEY}"}, {"kind": "mock"}]))
    config = load_config(m, r, {})
    deps = config.models[0].deployments
    assert not deps[0].enabled and "DEEPSEEK_API_KEY" in deps[0].disabled_reason
    assert deps[1].enabled
    assert any("disabled" in w for w in config.warnings)


def test_missing_models_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml", None, {})


def test_routing_file_errors(tmp_path: Path) -> None:
    m, r = write(tmp_path, one([{"kind": "mock"}]), {"routing_strategy": "magic"})
    with pytest.raises(ConfigError, match="routing_strategy: unknown strategy 'magic'"):
        load_config(m, r, {})
    m, r = write(tmp_path, one([{"kind": "mock"}]), {"routing_parameter": {"local_fraction": 1.5}})
    with pytest.raises(ConfigError, match=r"local_fraction: must be between 0.0 and 1.0"):
        load_config(m, r, {})


def test_unset_routing_endpoint_skips_entry_not_whole_file(tmp_path: Path) -> None:
    routing = {
        "routing_parameter": {"local_fraction": 0.7},
        "remote_deployment": [{"endpoint": "${LLAMA_BASE_URL}", "models": ["m"]}],
    }
    m, r = write(tmp_path, one([{"kind": "mock"}]), routing)
    config = load_config(m, r, {})
    assert config.routing.local_fraction == 0.7
    assert config.routing.remote == ()
    assert any("LLAMA_BASE_URL" in w for w in config.warnings)


def test_hard_offload_removes_local_and_drops_empty_models(tmp_path: Path) -> None:
    models = {
        "models": [
            {
                "id": "hybrid",
                "route": [
                    {"kind": "vllm", "base_url": "http://gpu:8000/v1/"},
                    {"kind": "openai", "base_url": "http://cloud/v1", "api_key": "k"},
                ],
            },
            {"id": "local-only", "route": [{"kind": "vllm", "base_url": "http://GPU:8000/v1"}]},
        ]
    }
    m, r = write(tmp_path, models)
    config = load_config(m, r, {"OFFLOAD": "1", "LOCAL_BASE_URL": "http://gpu:8000/v1"})
    assert [mm.id for mm in config.models] == ["hybrid"]
    assert [d.kind for d in config.models[0].deployments] == ["openai"]


def test_key_never_in_repr(tmp_path: Path) -> None:
    m, r = write(tmp_path, one([{"kind": "openai", "base_url": "http://x/v1", "api_key": "sk-secret-123"}]))
    config = load_config(m, r, {})
    assert "sk-secret-123" not in repr(config)
