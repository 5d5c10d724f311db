"""An unknown key anywhere in models.yaml or routing.yaml stops the load, naming file, path and nearest key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from routing.config.load import load_config
from routing.config.schema import ConfigError


def load(tmp_path: Path, models: Any, routing: Any | None = None) -> Any:
    m, r = tmp_path / "models.yaml", tmp_path / "routing.yaml"
    m.write_text(models if isinstance(models, str) else yaml.safe_dump(models))
    if routing is not None:
        r.write_text(routing if isinstance(routing, str) else yaml.safe_dump(routing))
    return load_config(m, r, {})


def error(tmp_path: Path, models: Any, routing: Any | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, models, routing)
    return info.value


def route(*deployments: dict[str, Any], **model: Any) -> dict[str, Any]:
    return {"models": [{"id": "m", "route": list(deployments), **model}]}


MOCK = {"kind": "mock"}

MODELS_CASES = [
    ({"modles": [{"id": "m", "provider": "mock"}]}, "modles", "models"),
    ({"models": [{"id": "m", "provider": "mock", "alises": ["x"]}]}, "models[0].alises", "aliases"),
    ({"models": [{"id": "m", "provider": "mock", "max_concurent": 2}]}, "models[0].max_concurent", "max_concurrent"),
    (route(MOCK, {"kind": "mock", "wieght": 5}), "models[0].route[1].wieght", "weight"),
    (route({"kind": "mock", "max_concurent": 2}), "models[0].route[0].max_concurent", "max_concurrent"),
    (route({"kind": "mock", "pricing": {"promt": 1}}), "models[0].route[0].pricing.promt", "prompt"),
    (route(MOCK, pricing={"completon": 1}), "models[0].pricing.completon", "completion"),
    (route({"kind": "mock", "timeouts": {"totl": 9}}), "models[0].route[0].timeouts.totl", "total"),
    (route({"kind": "mock", "mock": {"ttft": 5}}), "models[0].route[0].mock.ttft", "ttft_ms"),
    ({"models": [{"id": "m", "provider": "mock", "mock": {"replies": "x"}}]}, "models[0].mock.replies", "reply"),
]


@pytest.mark.parametrize(("models", "path", "suggestion"), MODELS_CASES)
def test_unknown_models_key_names_path_and_nearest_key(
    tmp_path: Path, models: dict[str, Any], path: str, suggestion: str
) -> None:
    exc = error(tmp_path, models)
    assert exc.file == str(tmp_path / "models.yaml") and exc.path == path
    assert exc.problem == f"unknown field; did you mean `{suggestion}`?"
    assert exc.fix == f"rename it to `{suggestion}`, or remove it"
    assert str(exc) == f"{exc.file}: {path}: {exc.problem}. Fix: {exc.fix}"


ROUTING_CASES = [
    ({"routing_stratgy": "fixed"}, "routing_stratgy", "routing_strategy"),
    ({"routing_parameter": {"local_fractoin": 0.2}}, "routing_parameter.local_fractoin", "local_fraction"),
    ({"strategies": {"s": {"kind": "cost", "wieghts": {}}}}, "strategies.s.wieghts", "weights"),
    ({"local_deployment": [{"endpoint": "http://gpu:8000", "modles": ["m"]}]}, "local_deployment[0].modles", "models"),
    ({"remote_deployment": [{"endpont": "http://x", "models": ["m"]}]}, "remote_deployment[0].endpont", "endpoint"),
]


@pytest.mark.parametrize(("routing", "path", "suggestion"), ROUTING_CASES)
def test_unknown_routing_key_names_path_and_nearest_key(
    tmp_path: Path, routing: dict[str, Any], path: str, suggestion: str
) -> None:
    exc = error(tmp_path, route(MOCK), routing)
    assert exc.file == str(tmp_path / "routing.yaml") and exc.path == path
    assert str(exc).endswith(
        f"{path}: unknown field; did you mean `{suggestion}`?. Fix: rename it to `{suggestion}`, or remove it"
    )


def test_the_three_silent_typos_of_the_old_loader_are_named(tmp_path: Path) -> None:
    models = "models:\n  - id: m\n    route:\n      - kind: mock\n      - kind: mock\n        wieght: 5\n"
    assert "models[0].route[1].wieght: unknown field; did you mean `weight`?" in str(error(tmp_path, models))
    models = "models:\n  - id: m\n    route:\n      - kind: mock\n        max_concurent: 2\n"
    assert "models[0].route[0].max_concurent: unknown field; did you mean `max_concurrent`?" in str(
        error(tmp_path, models)
    )
    routing = "routing_parameter:\n  local_fractoin: 0.2\n"
    assert "routing_parameter.local_fractoin: unknown field; did you mean `local_fraction`?" in str(
        error(tmp_path, route(MOCK), routing)
    )


def test_unknown_key_without_a_close_match_lists_the_valid_keys(tmp_path: Path) -> None:
    exc = error(tmp_path, route({"kind": "mock", "timeouts": {"zzz": 1}}))
    assert exc.path == "models[0].route[0].timeouts.zzz" and exc.problem == "unknown field"
    assert exc.fix == "remove it; the keys here are: connect, first_token, idle, total"


def test_unknown_key_wins_over_the_missing_key_it_misspells(tmp_path: Path) -> None:
    exc = error(tmp_path, route({"knd": "mock"}))
    assert exc.path == "models[0].route[0].knd" and "did you mean `kind`?" in exc.problem


def test_an_unknown_key_in_a_skipped_routing_entry_is_still_an_error(tmp_path: Path) -> None:
    routing = {"remote_deployment": [{"endpoint": "${LLAMA_BASE_URL}", "model": ["m"]}]}
    exc = error(tmp_path, route(MOCK), routing)
    assert exc.path == "remote_deployment[0].model" and "did you mean `models`?" in exc.problem


@pytest.mark.parametrize("model_key", ["weight", "base_url", "kind", "provider", "mock"])
def test_deployment_keys_beside_route_are_not_silently_ignored(tmp_path: Path, model_key: str) -> None:
    value = {"weight": 3, "base_url": "http://x", "kind": "mock", "provider": "mock", "mock": {"ttft_ms": 1}}[model_key]
    exc = error(tmp_path, route(MOCK, **{model_key: value}))
    assert exc.path == f"models[0].{model_key}" and exc.problem == "applies only to a model without `route:`"
    assert exc.fix == f"move `{model_key}` into the `route:` entries, or remove it"


def test_model_keys_that_share_a_name_with_deployment_keys_stay_allowed_beside_route(tmp_path: Path) -> None:
    models = route(MOCK, {"kind": "mock", "provider_model_id": "own", "rpm": 5}, provider_model_id="up", rpm=60, tpm=9)
    model = load(tmp_path, models).models[0]
    assert [d.provider_model_id for d in model.deployments] == ["up", "own"]
    assert (model.rpm, model.tpm) == (60, 9) and [d.rpm for d in model.deployments] == [0, 5]


def test_headers_weights_and_model_strategies_are_free_form(tmp_path: Path) -> None:
    models = route({"kind": "mock", "name": "a", "headers": {"x-anything": "1", "X-Team": 7}})
    routing = {
        "strategies": {"my-split": {"kind": "weighted", "weights": {"a": 2, "whatever-provider": 1}}},
        "model_strategies": {"m": "my-split"},
    }
    config = load(tmp_path, models, routing)
    assert config.models[0].deployments[0].headers == (("X-Team", "7"), ("x-anything", "1"))
    assert config.routing.strategies[0].weights == (("a", 2.0), ("whatever-provider", 1.0))
    assert config.routing.model_strategies == (("m", "my-split"),)
