"""A deployment's own price wins over its model's, and prices in two units compare by one stated rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from routing.config.load import load_config
from routing.config.schema import DeploymentConfig, Pricing
from routing.price import SECONDS_PER_MTOK, unit_price
from routing.strategies import cheapest_first

MODEL = {"prompt": 0.5, "completion": 1.5}


def deployments(tmp_path: Path, route: list[dict[str, object]]) -> dict[str, DeploymentConfig]:
    path = tmp_path / "models.yaml"
    model = {"id": "m", "pricing": MODEL, "route": [{"kind": "mock", **d} for d in route]}
    path.write_text(yaml.safe_dump({"models": [model]}))
    config = load_config(path, tmp_path / "routing.yaml", env={})
    return {d.name: d for d in config.models[0].deployments}


def test_own_pricing_else_cost_per_second_else_the_model_s(tmp_path: Path) -> None:
    deps = deployments(
        tmp_path,
        [
            {"name": "own", "pricing": {"prompt": 0.1, "completion": 0.2}, "cost_per_second": 0.001},
            {"name": "partial", "pricing": {"completion": 3.0}},
            {"name": "seconds", "cost_per_second": 0.0001},
            {"name": "inherits"},
        ],
    )
    assert deps["own"].pricing == Pricing(prompt=0.1, completion=0.2)  # its token price wins over its seconds
    assert deps["partial"].pricing == Pricing(prompt=0.5, completion=3.0)  # price by price over the model's
    assert deps["seconds"].pricing == Pricing() and deps["seconds"].cost_per_second == 0.0001
    assert deps["inherits"].pricing == Pricing(prompt=0.5, completion=1.5)


def test_two_units_compare_at_100_tokens_a_second(tmp_path: Path) -> None:
    deps = deployments(
        tmp_path,
        [{"name": "tokens"}, {"name": "cheap", "cost_per_second": 0.0001}, {"name": "dear", "cost_per_second": 0.0003}],
    )
    assert SECONDS_PER_MTOK == 10_000
    assert unit_price(deps["tokens"]) == 2.0
    assert unit_price(deps["cheap"]) == pytest.approx(1.0) and unit_price(deps["dear"]) == pytest.approx(3.0)


def test_the_cost_strategy_sends_everything_to_the_cheapest_own_price(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    route = [{"kind": "mock", "name": n, "cost_per_second": c} for n, c in (("dear", 0.0003), ("cheap", 0.0001))]
    path.write_text(yaml.safe_dump({"models": [{"id": "m", "pricing": MODEL, "route": route}]}))
    model = load_config(path, tmp_path / "routing.yaml", env={}).models[0]
    assert cheapest_first(model, {}) == [0.0, 1.0]
