"""`<PROVIDER>_TPM_LIMIT` (GEMINI_TPM_LIMIT, DEEPSEEK_TPM_LIMIT): the default `tpm` of that provider's deployments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from routing.config.load import load_config
from routing.config.schema import ConfigError, DeploymentConfig

MODELS = {
    "models": [
        {"id": "gemini-2.5-flash", "provider": "gemini", "api_key": "${GEMINI_API_KEY}"},
        {"id": "deepseek-chat", "provider": "deepseek", "api_key": "${DEEPSEEK_API_KEY}"},
        {"id": "pinned", "provider": "deepseek", "api_key": "${DEEPSEEK_API_KEY}", "tpm": 77},
        {"id": "local", "route": [{"kind": "vllm", "base_url": "http://gpu:8000/v1"}]},
    ]
}
KEYS = {"GEMINI_API_KEY": "g-key", "DEEPSEEK_API_KEY": "d-key"}


def deployments(tmp_path: Path, env: dict[str, str]) -> dict[str, DeploymentConfig]:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(MODELS))
    config = load_config(path, tmp_path / "routing.yaml", {**KEYS, **env})
    return {m.id: m.deployments[0] for m in config.models}


def test_provider_env_sets_tpm_of_its_deployments_only(tmp_path: Path) -> None:
    deps = deployments(tmp_path, {"GEMINI_TPM_LIMIT": "1000000", "DEEPSEEK_TPM_LIMIT": " 5000 "})
    assert deps["gemini-2.5-flash"].tpm == 1_000_000
    assert deps["deepseek-chat"].tpm == 5000
    assert deps["pinned"].tpm == 77  # an explicit tpm wins over the provider default
    assert deps["local"].tpm == 0


def test_unset_or_empty_means_no_limit(tmp_path: Path) -> None:
    deps = deployments(tmp_path, {"GEMINI_TPM_LIMIT": ""})
    assert deps["gemini-2.5-flash"].tpm == 0 and deps["deepseek-chat"].tpm == 0


@pytest.mark.parametrize("value", ["lots", "-5", "1.5"])
def test_bad_value_names_the_variable_and_the_field(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        deployments(tmp_path, {"GEMINI_TPM_LIMIT": value})
    message = str(info.value)
    assert "models[0].tpm" in message and f"GEMINI_TPM_LIMIT={value!r}" in message and "Fix:" in message
