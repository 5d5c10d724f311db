"""Values after `${VAR}` expansion: numbers as strings, whole numbers, booleans, blanks, and the error table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from routing.config.load import load_config
from routing.config.routing_file import load_routing
from routing.config.schema import ConfigError, Pricing
from tests.unit.config.test_unknown_keys import MOCK, error, load, route


def deployment_text(**fields: str) -> str:
    """models.yaml with one mock deployment whose fields are written as raw YAML."""
    extra = "".join(f"\n        {k}: {v}" for k, v in fields.items())
    return f"models:\n  - id: m\n    route:\n      - kind: mock{extra}\n"


def test_numbers_written_through_variables_validate(tmp_path: Path) -> None:
    models = deployment_text(
        weight="${W:-2}", max_concurrent="${N}", rpm="'60'", timeouts="{total: '${T:-9}'}", cost_per_second="${C}"
    )
    m = tmp_path / "models.yaml"
    m.write_text(models)
    dep = load_config(m, None, {"N": "3", "C": "0.5"}).models[0].deployments[0]
    assert (dep.weight, dep.max_concurrent, dep.rpm, dep.timeouts.total, dep.cost_per_second) == (2.0, 3, 60, 9.0, 0.5)


def test_a_blank_or_unset_value_means_the_default(tmp_path: Path) -> None:
    dep = load(tmp_path, deployment_text(weight="", max_concurrent="${UNSET}", region="")).models[0].deployments[0]
    assert (dep.weight, dep.max_concurrent, dep.region) == (1.0, 0, "")


@pytest.mark.parametrize(
    ("fields", "path", "problem", "fix"),
    [
        ({"max_concurrent": "2.5"}, "max_concurrent", "must be a whole number, got 2.5", "drop the fraction"),
        ({"rpm": "'1.5'"}, "rpm", "must be a number, got '1.5'", "write a plain number, e.g. `rpm: 1`"),
        ({"weight": "true"}, "weight", "must be a number, got True", "write a plain number, e.g. `weight: 1`"),
        ({"max_concurrent": "yes"}, "max_concurrent", "must be a number, got True", "write a plain number"),
        ({"weight": "heavy"}, "weight", "must be a number, got 'heavy'", "write a plain number, e.g. `weight: 1`"),
        ({"weight": "-1"}, "weight", "must be >= 0.0, got -1", "set `weight` to a number >= 0.0"),
        ({"timeouts": "{connect: 0}"}, "timeouts.connect", "must be >= 0.01, got 0", "set `connect`"),
        ({"mock": "{completion_tokens: 0}"}, "mock.completion_tokens", "must be >= 1.0, got 0", "set"),
        ({"region": "true"}, "region", "must be a string, got bool", "quote the value of `region`"),
        ({"timeouts": "5"}, "timeouts", "must be a mapping, got int", "write `key: value` lines"),
        ({"headers": "[a]"}, "headers", "must be a mapping, got list", "write `key: value` lines"),
        ({"health_timeout": "0.001"}, "health_timeout", "must be 0 (use routing.yaml timeout) or >= 0.01 s", "write"),
    ],
)
def test_bad_values_name_path_problem_and_fix(
    tmp_path: Path, fields: dict[str, str], path: str, problem: str, fix: str
) -> None:
    exc = error(tmp_path, deployment_text(**fields))
    assert exc.path == f"models[0].route[0].{path}"
    assert exc.problem.startswith(problem) and exc.fix.startswith(fix)
    assert "\n" not in str(exc)


def test_model_level_errors(tmp_path: Path) -> None:
    exc = error(tmp_path, {"models": [{"provider": "mock"}]})
    assert (exc.path, exc.problem, exc.fix) == ("models[0].id", "is required", "add `id:` with a non-empty string")
    exc = error(tmp_path, {"models": [{"id": "m", "route": "mock"}]})
    assert (exc.path, exc.problem) == ("models[0].route", "must be a list, got str")
    exc = error(tmp_path, {"models": [{"id": "m", "provider": "mock", "context_length": 0}]})
    assert (exc.path, exc.problem) == ("models[0].context_length", "must be >= 1.0, got 0")
    exc = error(tmp_path, "- just a list\n")
    assert (exc.path, exc.problem) == ("(top level)", "must be a mapping, got list")
    exc = error(tmp_path, {"modles": []})
    assert exc.path == "modles" and "did you mean `models`?" in exc.problem
    exc = error(tmp_path, {})
    assert (exc.path, exc.problem) == ("models", "must list at least one model")


def test_shorthand_kind_errors_name_the_key_that_was_written(tmp_path: Path) -> None:
    assert error(tmp_path, {"models": [{"id": "m", "provider": "warp"}]}).path == "models[0].provider"
    assert error(tmp_path, {"models": [{"id": "m", "kind": "warp"}]}).path == "models[0].kind"
    exc = error(tmp_path, {"models": [{"id": "m"}]})
    assert exc.path == "models[0].route" and "no top-level `provider`" in exc.problem


def test_lists_of_strings_accept_one_string_and_drop_blanks(tmp_path: Path) -> None:
    config = load(tmp_path, route(MOCK, aliases="mm", supported_params=["seed", "${UNSET}", 7]))
    assert config.models[0].aliases == ("mm",) and config.resolve("mm") is not None
    assert config.models[0].supported_params == ("seed", "7")


def test_prices_as_strings_and_deployment_prices_over_the_model_ones(tmp_path: Path) -> None:
    models = route(
        {"kind": "mock", "name": "a"},
        {"kind": "mock", "name": "b", "pricing": {"completion": 3, "input_cache_reads": "0.5"}},
        pricing={"prompt": "0.10", "completion": "0.20"},
    )
    a, b = load(tmp_path, models).models[0].deployments
    assert a.pricing == Pricing(prompt=0.1, completion=0.2)
    assert b.pricing == Pricing(prompt=0.1, completion=3.0, input_cache_reads=0.5)


def test_names_default_and_dedupe(tmp_path: Path) -> None:
    models = route(
        {"kind": "vllm", "base_url": "http://gpu:8000/v1/"},
        {"kind": "vllm", "base_url": "http://gpu:8000/v1"},
        MOCK,
        MOCK,
    )
    deps = load(tmp_path, models).models[0].deployments
    assert [d.name for d in deps] == ["local@gpu:8000", "local@gpu:8000-2", "mock", "mock-2"]
    assert deps[0].base_url == "http://gpu:8000/v1"
    assert "characters other than" in error(tmp_path, route({"kind": "mock", "name": "a b"})).problem


def test_urls_are_checked_except_for_in_process_kinds(tmp_path: Path) -> None:
    exc = error(tmp_path, route({"kind": "vllm", "base_url": "http://user:pw@gpu/v1"}))
    assert exc.path == "models[0].route[0].base_url" and "credentials" in exc.problem
    assert load(tmp_path, route({"kind": "mock", "base_url": "mock://anything"})).models[0].deployments[0].enabled
    exc = error(tmp_path, route({"kind": "golem"}))
    assert (exc.path, exc.problem) == ("models[0].route[0].base_url", "is required for kind 'golem'")


def test_unset_url_variable_disables_instead_of_failing(tmp_path: Path) -> None:
    config = load(tmp_path, route({"kind": "vllm", "base_url": "${LOCAL_BASE_URL}"}, MOCK))
    gpu = config.models[0].deployments[0]
    assert not gpu.enabled and gpu.disabled_reason == "base_url needs LOCAL_BASE_URL, which is not set"
    assert any("disabled" in w for w in config.warnings)


def write_routing(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    return path


def test_routing_numbers_and_strategy_checks(tmp_path: Path) -> None:
    config = load_routing(
        write_routing(tmp_path, "timeout: '${T:-3}'\nrouting_parameter: {local_fraction: '0.25'}\n"), {}, set()
    )
    assert (config.timeout, config.local_fraction) == (3.0, 0.25)
    with pytest.raises(ConfigError, match=r"routing_parameter.local_fraction: must be between 0.0 and 1.0, got 2"):
        load_routing(write_routing(tmp_path, "routing_parameter: {local_fraction: 2}\n"), {}, set())
    with pytest.raises(ConfigError, match=r"strategies.s.kind: unknown strategy kind 'magic'. Fix: use one of"):
        load_routing(write_routing(tmp_path, "strategies: {s: {kind: magic}}\n"), {}, set())
    with pytest.raises(ConfigError, match=r"model_strategies.m: unknown strategy 'nope'"):
        load_routing(write_routing(tmp_path, "model_strategies: {m: nope}\n"), {}, {"m"})
    with pytest.raises(ConfigError, match=r"local_deployment\[0\].models: must list at least one model id"):
        load_routing(write_routing(tmp_path, "local_deployment: [{endpoint: 'http://gpu'}]\n"), {}, set())
    with pytest.raises(ConfigError, match=r"local_deployment\[0\].endpoint: is required"):
        load_routing(write_routing(tmp_path, "local_deployment: [{models: [m]}]\n"), {}, set())


def test_routing_warnings_for_unknown_models_and_unset_endpoints(tmp_path: Path) -> None:
    text = (
        "model_strategies: {ghost: cost}\n"
        "local_deployment: [{endpoint: '${GPU}', models: [m]}, {endpoint: 'http://gpu', models: [m, ghost]}]\n"
    )
    config = load_routing(write_routing(tmp_path, text), {}, {"m"})
    assert [g.endpoint for g in config.local] == ["http://gpu"]
    assert len(config.warnings) == 3 and any("GPU is not set; entry skipped" in w for w in config.warnings)


def test_empty_routing_file_is_the_defaults(tmp_path: Path) -> None:
    config = load_routing(write_routing(tmp_path, "# nothing\n"), {}, set())
    assert config.strategy == "fixed" and config.local_fraction == 0.5 and config.timeout == 2.0


def test_file_models_are_frozen() -> None:
    from pydantic import ValidationError

    from routing.config.models_schema import MockFile

    mock: Any = MockFile()
    with pytest.raises(ValidationError):
        mock.reply = "changed"
