"""Pure embeddings pieces: the upstream request and answer, and the request check."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from adapters.base import ProtocolError
from adapters.embeddings import EmbeddingsAdapter
from adapters.kinds import KINDS
from gateway.errors import APIError
from gateway.openai.embeddings import parse_embeddings
from routing.config.load import load_config
from routing.config.schema import ConfigError, DeploymentConfig, ModelConfig


def test_the_body_goes_through_but_for_model() -> None:
    dep = DeploymentConfig("d", "e", "openai", "openai", "https://x/v1", "up-e", 1.0, api_key="sk-1")
    body = {"model": "e", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 8, "user": "u"}
    request = EmbeddingsAdapter(KINDS["openai"]).build(dep, body)
    assert request.url == "https://x/v1/embeddings" and request.headers["Authorization"] == "Bearer sk-1"
    assert orjson.loads(request.body) == {**body, "model": "up-e"}


def test_the_answer_keeps_data_and_prompt_usage() -> None:
    adapter = EmbeddingsAdapter(KINDS["vllm"])
    answer = adapter.parse_response(b'{"data": [{"embedding": [0.5]}], "usage": {"prompt_tokens": 3}}')
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    with pytest.raises(ProtocolError):
        adapter.parse_response(b'{"choices": []}')


@pytest.mark.parametrize("given", ["text", ["a", "b"], [1, 2], [[1, 2], [3]]])
def test_inputs_openai_takes(given: object) -> None:
    assert parse_embeddings({"model": "e", "input": given, "provider": {"order": ["x"]}}).payload == {
        "model": "e",
        "input": given,
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "e", "input": ""}, "input"),
        ({"model": "e", "input": []}, "input"),
        ({"model": "e", "input": [1, "a"]}, "input"),
        ({"model": "e", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "e", "input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_a_bad_request_names_its_param(body: dict, param: str) -> None:
    with pytest.raises(APIError) as caught:
        parse_embeddings(body)
    assert caught.value.param == param and caught.value.status == 400


def _load(tmp_path: Path, entry: dict) -> ModelConfig:
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": [entry]}))
    return load_config(tmp_path / "models.yaml", tmp_path / "routing.yaml", {}).models[0]


def test_endpoints_are_configured_and_checked(tmp_path: Path) -> None:
    vllm = {"kind": "vllm", "base_url": "http://gpu:8000/v1"}
    assert _load(tmp_path, {"id": "c", "route": [vllm]}).endpoints == ("chat",)
    both = _load(tmp_path, {"id": "e", "endpoints": ["embeddings", "chat"], "route": [vllm]})
    assert both.serves("embeddings") and both.serves("chat")
    with pytest.raises(ConfigError, match=r"models\[0\].route\[0\].kind: kind 'mock' cannot serve embeddings"):
        _load(tmp_path, {"id": "e", "endpoints": ["embeddings"], "route": [{"kind": "mock"}]})
    with pytest.raises(ConfigError, match=r"models\[0\].endpoints"):
        _load(tmp_path, {"id": "e", "endpoints": ["rerank"], "route": [vllm]})
