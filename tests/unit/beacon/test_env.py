"""The Beacon environment shortcut: env vars in, models and deployments out."""

from __future__ import annotations

import pytest

from routing.config.beacon_env import DEFAULT_MODELS, beacon_models_from_env
from routing.config.schema import ConfigError, DeploymentConfig, ModelConfig

GOLEM = {
    "GOLEM_PROVIDER_ENDPOINTS": "https://beacon-golem-us.fly.dev, https://beacon-golem-eu.fly.dev/",
    "GOLEM_PROVIDER_REGIONS": "us-east,eu-west",
}


def deps_of(models: list[ModelConfig], model_id: str) -> dict[str, DeploymentConfig]:
    [model] = [m for m in models if m.id == model_id]
    return {d.name: d for d in model.deployments}


def test_nothing_set_gives_nothing() -> None:
    assert beacon_models_from_env({}, []) == ([], [])
    assert beacon_models_from_env({"GOLEM_PROVIDER_ENDPOINTS": " "}, []) == ([], [])


def test_golem_endpoints_with_explicit_regions() -> None:
    models, warnings = beacon_models_from_env(GOLEM, [])
    assert warnings == []
    assert [m.id for m in models] == list(DEFAULT_MODELS)
    for model in models:
        assert model.context_length == 8192 and model.name == model.id
        deps = {d.name: d for d in model.deployments}
        assert list(deps) == ["golem-1", "golem-2"]
        g1, g2 = deps["golem-1"], deps["golem-2"]
        assert (g1.base_url, g1.region, g2.base_url, g2.region) == (
            "https://beacon-golem-us.fly.dev",
            "us-east",
            "https://beacon-golem-eu.fly.dev",
            "eu-west",
        )
        for d in (g1, g2):
            assert (d.kind, d.provider, d.cost_per_second, d.max_concurrent) == ("golem", "golem", 0.0001, 5)
            assert d.provider_model_id == model.id and d.model_id == model.id and d.enabled and d.api_key is None


def test_regions_are_never_guessed_from_urls() -> None:
    env = {"GOLEM_PROVIDER_ENDPOINTS": "http://golem-us-east.example:8000,http://iad.example,http://sin.example"}
    models, warnings = beacon_models_from_env(env | {"GOLEM_PROVIDER_REGIONS": "eu-west"}, [])
    deps = deps_of(models, "llama3.2-1b")
    assert [d.region for d in deps.values()] == ["eu-west", "", ""]
    assert sum("GOLEM_PROVIDER_REGIONS has no region" in w for w in warnings) == 2


def test_modal_and_runpod_deployments() -> None:
    env = {
        "MODAL_API_BASE": "https://x--inference.modal.run",
        "MODAL_REGION": "us-east",
        "MODAL_API_TOKEN": "modal-tok",
        "MODAL_HEALTH_ENDPOINT": "https://x--health.modal.run",
        "RUNPOD_API_BASE": "https://api.runpod.ai/v2/abc123",
        "RUNPOD_REGION": "eu-west",
        "RUNPOD_API_KEY": "rp-key",
        "BEACON_MODELS": "llama3.2-1b, mistral-7b",
    }
    models, warnings = beacon_models_from_env(env, [])
    assert warnings == [] and [m.id for m in models] == ["llama3.2-1b", "mistral-7b"]
    deps = deps_of(models, "mistral-7b")
    modal, runpod = deps["modal"], deps["runpod"]
    assert (modal.base_url, modal.region, modal.api_key, modal.health_path) == (
        "https://x--inference.modal.run",
        "us-east",
        "modal-tok",
        "https://x--health.modal.run",
    )
    assert (modal.cost_per_second, modal.max_concurrent, modal.kind) == (0.0003, 10, "modal")
    assert (runpod.base_url, runpod.region, runpod.api_key, runpod.enabled) == (
        "https://api.runpod.ai/v2/abc123",
        "eu-west",
        "rp-key",
        True,
    )
    assert (runpod.cost_per_second, runpod.max_concurrent, runpod.kind) == (0.00025, 8, "runpod")
    assert runpod.provider_model_id == "mistral-7b"
    assert "rp-key" not in repr(runpod) and "modal-tok" not in repr(modal)


def test_runpod_without_key_or_endpoint_id_is_disabled_with_a_reason() -> None:
    models, warnings = beacon_models_from_env({"RUNPOD_API_BASE": "https://api.runpod.ai/v2", "BEACON_MODELS": "m"}, [])
    runpod = deps_of(models, "m")["runpod"]
    assert not runpod.enabled
    assert runpod.disabled_reason == (
        "RUNPOD_API_BASE must be https://api.runpod.ai/v2/<endpoint_id>; RUNPOD_API_KEY is not set"
    )
    assert f"m: deployment runpod disabled: {runpod.disabled_reason}" in warnings
    assert "RUNPOD_REGION is not set; deployment runpod gets no region" in warnings


def test_runpod_run_suffix_is_dropped() -> None:
    env = {"RUNPOD_API_BASE": "https://api.runpod.ai/v2/abc/run", "RUNPOD_API_KEY": "k", "RUNPOD_REGION": "us-east"}
    models, warnings = beacon_models_from_env(env | {"BEACON_MODELS": "m"}, [])
    runpod = deps_of(models, "m")["runpod"]
    assert runpod.base_url == "https://api.runpod.ai/v2/abc" and runpod.enabled
    assert any("ends with /run" in w for w in warnings)


def test_appends_to_an_existing_model_by_id_or_alias_with_unique_names() -> None:
    mine = DeploymentConfig("golem-1", "llama", "vllm", "local", "http://gpu:8000/v1", "meta/llama", 1.0)
    existing = [ModelConfig("llama", "Llama", (mine,), aliases=("llama3.2-1b",), context_length=131072)]
    env = GOLEM | {"BEACON_MODELS": "llama3.2-1b,qwen"}
    models, warnings = beacon_models_from_env(env, existing)
    assert [m.id for m in models] == ["llama", "qwen"]
    llama = models[0]
    assert llama.context_length == 131072 and llama.aliases == ("llama3.2-1b",)
    assert [d.name for d in llama.deployments] == ["golem-1", "golem-1-2", "golem-2"]
    added = llama.deployments[1]
    assert (added.model_id, added.provider_model_id, added.kind) == ("llama", "llama3.2-1b", "golem")
    assert any("golem-1 already exists" in w for w in warnings)


def test_invalid_urls_fail_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"GOLEM_PROVIDER_ENDPOINTS\[1\]: must be an http"):
        beacon_models_from_env({"GOLEM_PROVIDER_ENDPOINTS": "http://a,ftp://b"}, [])
    with pytest.raises(ConfigError, match="MODAL_API_BASE: must not carry credentials"):
        beacon_models_from_env({"MODAL_API_BASE": "https://x.modal.run?token=abc"}, [])


def test_stray_settings_warn() -> None:
    models, warnings = beacon_models_from_env({"RUNPOD_API_KEY": "k", "GOLEM_PROVIDER_REGIONS": "us-east"}, [])
    assert models == []
    assert warnings == [
        "GOLEM_PROVIDER_REGIONS is set but GOLEM_PROVIDER_ENDPOINTS is not; it has no effect",
        "RUNPOD_API_KEY is set but RUNPOD_API_BASE is not; it has no effect",
    ]
