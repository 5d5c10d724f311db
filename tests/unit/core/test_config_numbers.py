"""Config checks from the audit: non-finite numbers, the route-less shorthand, OFFLOAD URL matching and the
commented strategy example in the shipped routing.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from routing.config.load import load_config
from routing.config.routing_file import load_routing
from routing.config.schema import ConfigError, MockOptions, StrategyConfig, Timeouts
from tests.unit.core.test_config import write


def one(**fields: Any) -> str:
    """models.yaml text with one mock deployment carrying `fields` as raw YAML (so `.inf` stays YAML)."""
    extra = "".join(f"\n        {k}: {v}" for k, v in fields.items())
    return f"models:\n  - id: m\n    route:\n      - kind: mock{extra}\n"


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "'inf'", "'NaN'"])
@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"weight": "{v}"}, "models[0].route[0].weight"),
        ({"cost_per_second": "{v}"}, "models[0].route[0].cost_per_second"),
        ({"health_check": "{v}"}, "models[0].route[0].health_check"),
        ({"rpm": "{v}"}, "models[0].route[0].rpm"),
        ({"timeouts": "{{total: {v}}}"}, "models[0].route[0].timeouts.total"),
        ({"pricing": "{{prompt: {v}}}"}, "models[0].route[0].pricing.prompt"),
        ({"mock": "{{ttft_ms: {v}}}"}, "models[0].route[0].mock.ttft_ms"),
    ],
)
def test_non_finite_model_numbers_are_rejected(tmp_path: Path, value: str, fields: dict[str, str], path: str) -> None:
    m, r = write(tmp_path, one(**{k: v.format(v=value) for k, v in fields.items()}))
    with pytest.raises(ConfigError) as info:
        load_config(m, r, {})
    assert info.value.file == str(m) and info.value.path == path
    assert "must be a finite number" in info.value.problem and info.value.fix


@pytest.mark.parametrize(
    ("routing", "path"),
    [
        ("timeout: .inf", "timeout"),
        ("health_check: .inf", "health_check"),
        ("routing_parameter: {local_fraction: .nan}", "routing_parameter.local_fraction"),
        ("strategies: {split: {kind: weighted, weights: {mock: .inf}}}", "strategies.split.weights.mock"),
    ],
)
def test_non_finite_routing_numbers_are_rejected(tmp_path: Path, routing: str, path: str) -> None:
    m, r = write(tmp_path, one(), routing)
    with pytest.raises(ConfigError) as info:
        load_config(m, r, {})
    assert info.value.file == str(r) and info.value.path == path
    assert "must be a finite number" in str(info.value) and "Fix:" in str(info.value)


def test_large_finite_weight_is_still_accepted(tmp_path: Path) -> None:
    m, r = write(tmp_path, one(weight="1e300"))
    assert load_config(m, r, {}).models[0].deployments[0].weight == 1e300


DEPLOYMENT_FIELDS: dict[str, Any] = {
    "provider_model_id": "upstream-m",
    "weight": 2,
    "region": "eu-west",
    "rpm": 60,
    "tpm": 6000,
    "cost_per_second": 0.0003,
    "max_concurrent": 4,
    "health_path": "/ping",
    "health_check": 15,
    "timeouts": {"connect": 1, "first_token": 2, "idle": 3, "total": 4},
    "headers": {"x-team": "beacon"},
    "mock": {"ttft_ms": 100, "chunk_delay_ms": 5, "completion_tokens": 3, "reply": "hi"},
}


def test_shorthand_keeps_mock_and_timeouts(tmp_path: Path) -> None:
    models = {"models": [{"id": "m", "provider": "mock", "mock": {"ttft_ms": 100}, "timeouts": {"total": 9}}]}
    m, r = write(tmp_path, models)
    dep = load_config(m, r, {}).models[0].deployments[0]
    assert dep.mock == MockOptions(ttft_ms=100.0)
    assert dep.timeouts == Timeouts(total=9.0)


def test_shorthand_accepts_every_deployment_field_a_route_does(tmp_path: Path) -> None:
    short = {"id": "m", "provider": "mock", **DEPLOYMENT_FIELDS}
    routed = {"id": "m", "route": [{"kind": "mock", **DEPLOYMENT_FIELDS}]}
    (tmp_path / "short").mkdir()
    (tmp_path / "routed").mkdir()
    from_short = load_config(*write(tmp_path / "short", {"models": [short]}), {}).models[0].deployments[0]
    from_route = load_config(*write(tmp_path / "routed", {"models": [routed]}), {}).models[0].deployments[0]
    assert from_short == from_route
    assert from_short.headers == (("x-team", "beacon"),) and from_short.max_concurrent == 4
    assert from_short.health_path == "/ping" and from_short.cost_per_second == 0.0003


def test_shorthand_field_errors_name_the_model_path(tmp_path: Path) -> None:
    m, r = write(tmp_path, {"models": [{"id": "m", "provider": "mock", "max_concurrent": -1}]})
    with pytest.raises(ConfigError, match=r"models\[0\]\.max_concurrent: must be >= 0"):
        load_config(m, r, {})


def offload_models() -> dict[str, Any]:
    return {
        "models": [
            {
                "id": "hybrid",
                "route": [
                    {"kind": "vllm", "name": "gpu", "base_url": "http://gpu:8000/v1"},
                    {"kind": "vllm", "name": "other-port", "base_url": "http://gpu:80001/v1"},
                    {"kind": "openai", "name": "cloud", "base_url": "http://cloud/v1", "api_key": "k"},
                ],
            },
        ]
    }


@pytest.mark.parametrize("local", ["http://gpu:8000", "http://GPU:8000/", "http://gpu:8000/v1"])
def test_hard_offload_matches_local_base_url_like_routing_endpoints(tmp_path: Path, local: str) -> None:
    m, r = write(tmp_path, offload_models())
    config = load_config(m, r, {"OFFLOAD": "1", "LOCAL_BASE_URL": local})
    assert [d.name for d in config.models[0].deployments] == ["other-port", "cloud"]


def test_hard_offload_keeps_a_deployment_the_url_does_not_name(tmp_path: Path) -> None:
    m, r = write(tmp_path, offload_models())
    config = load_config(m, r, {"OFFLOAD": "1", "LOCAL_BASE_URL": "http://gpu:8000/v2"})
    assert [d.name for d in config.models[0].deployments] == ["gpu", "other-port", "cloud"]


def test_shipped_routing_strategy_example_parses_when_uncommented(tmp_path: Path) -> None:
    lines = (Path(__file__).resolve().parents[3] / "config" / "routing.yaml").read_text().splitlines()
    start = lines.index("# strategies:")
    block = [line.removeprefix("# ") for line in lines[start:] if line.startswith("# ")]
    path = tmp_path / "routing.yaml"
    path.write_text("\n".join(block) + "\n")
    config = load_routing(path, {}, {"llama3.2-1b"})
    assert config.strategies == (
        StrategyConfig("baseline-burst", "weighted", weights=(("golem", 70.0), ("modal", 15.0), ("runpod", 15.0))),
    )
    assert config.model_strategies == (("llama3.2-1b", "baseline-burst"),)
    assert config.warnings == ()
