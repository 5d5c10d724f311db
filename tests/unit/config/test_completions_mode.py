"""`completions: native | translate` per deployment: native by default where the kind serves /v1/completions."""

from __future__ import annotations

from pathlib import Path

from tests.unit.config.test_unknown_keys import error, load, route

VLLM = {"kind": "vllm", "base_url": "http://127.0.0.1:8000/v1"}
OPENAI = {"kind": "openai", "base_url": "http://127.0.0.1:8001/v1", "api_key": "sk-x"}
GOLEM = {"kind": "golem", "base_url": "http://127.0.0.1:8002"}


def test_defaults_follow_the_kind(tmp_path: Path) -> None:
    config = load(tmp_path, route(VLLM, OPENAI, GOLEM, {"kind": "mock"}))
    assert [d.completions for d in config.models[0].deployments] == ["native", "native", "translate", "translate"]


def test_a_deployment_may_ask_for_translation(tmp_path: Path) -> None:
    config = load(tmp_path, route({**VLLM, "completions": "translate"}))
    assert config.models[0].deployments[0].completions == "translate"


def test_native_needs_a_kind_that_has_completions(tmp_path: Path) -> None:
    problem = error(tmp_path, route({**GOLEM, "completions": "native"}))
    assert problem.path == "models[0].route[0].completions" and "translate" in problem.fix


def test_only_the_two_modes_load(tmp_path: Path) -> None:
    problem = error(tmp_path, route({**VLLM, "completions": "chat"}))
    assert "completions" in str(problem)
