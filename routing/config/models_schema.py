"""models.yaml as pydantic models: which keys exist, their types and bounds (after `${VAR}` expansion)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal

from pydantic import Field

from adapters.kinds import KINDS
from routing.config.fields import Count, FileModel, Number, Positive, Price, Seconds, Strings
from routing.config.schema import MockOptions, ModelConfig, Timeouts

ENGINES = ("vllm", "sglang", "llamacpp")

NAME_PATTERN = r"^[A-Za-z0-9._@:+-]+$"
_KINDS: dict[str, Any] = {"enum": sorted(KINDS)}
_TIMEOUTS, _MOCK = Timeouts(), MockOptions()


def _default(name: str) -> Any:
    """ModelConfig's default for a field, so the file and the dataclass cannot drift apart."""
    return next(f.default for f in fields(ModelConfig) if f.name == name)


class PricingFile(FileModel):
    """USD per 1M tokens; `request` is USD per call. An absent price falls back to the model's."""

    prompt: Price | None = None
    completion: Price | None = None
    input_cache_reads: Price | None = None
    input_cache_writes: Price | None = None
    request: Price | None = None
    image: Price | None = None


class TimeoutsFile(FileModel):
    """Seconds: connect, first byte/token, idle gap between stream chunks, whole attempt."""

    connect: Seconds = _TIMEOUTS.connect
    first_token: Seconds = _TIMEOUTS.first_token
    idle: Seconds = _TIMEOUTS.idle
    total: Seconds = _TIMEOUTS.total


class MockFile(FileModel):
    """Behaviour of an in-process `kind: mock` deployment."""

    ttft_ms: Number = _MOCK.ttft_ms
    chunk_delay_ms: Number = _MOCK.chunk_delay_ms
    completion_tokens: Positive = _MOCK.completion_tokens
    reply: str = _MOCK.reply


class DeploymentFields(FileModel):
    """The deployment keys a model without `route:` may also give at top level (the shorthand)."""

    base_url: str = ""
    api_key: str = ""
    provider_model_id: str = ""
    weight: Number = 1.0
    region: str = ""
    rpm: Count = 0
    tpm: Count = 0
    cost_per_second: Number = 0.0
    max_concurrent: Count = 0
    health_path: str = ""
    health_check: Number = 0.0
    health_timeout: Number = 0.0
    metrics_url: str = ""
    engine: str = Field(default="", json_schema_extra={"enum": list(ENGINES)})
    timeouts: TimeoutsFile = TimeoutsFile()
    headers: dict[str, str] = {}
    mock: MockFile = MockFile()
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool | None = None
    completions: Literal["native", "translate"] | None = None
    reasoning: Literal["effort", "chat_template_kwargs", "openrouter", "drop"] | None = None
    thinking_switch: str = Field(default="enable_thinking", min_length=1)
    messages: Literal["native", "translate"] | None = None
    responses: Literal["native", "translate"] | None = None


class DeploymentFile(DeploymentFields):
    """One `route:` entry."""

    kind: str = Field(json_schema_extra=_KINDS)
    name: str = Field(default="", json_schema_extra={"pattern": NAME_PATTERN})
    provider: str = ""
    pricing: PricingFile = Field(default_factory=PricingFile)
    quantization: str = ""  # "" = the model's (a model without `route:` has only the model's own)


class ModelFile(DeploymentFields):
    """One `models:` entry; without `route:` its `provider` (or `kind`) and deployment keys make one deployment."""

    id: str
    name: str = ""
    aliases: Strings = ()
    context_length: Positive = _default("context_length")
    max_output_length: Positive = _default("max_output_length")
    pricing: PricingFile = Field(default_factory=PricingFile)
    supported_params: Strings = ()
    input_modalities: Strings = ()
    output_modalities: Strings = ()
    quantization: str = _default("quantization")
    description: str = ""
    owned_by: str = ""
    created: Count = 0
    strategy: str = ""
    endpoints: list[Literal["chat", "embeddings"]] = Field(default=["chat"], min_length=1)
    kind: str = Field(default="", json_schema_extra=_KINDS)
    provider: str = Field(default="", json_schema_extra=_KINDS)
    route: list[DeploymentFile] = []


class ModelsFile(FileModel):
    """The whole of models.yaml."""

    models: list[ModelFile] = Field(min_length=1)


SHORTHAND_ONLY = tuple(
    name for name in DeploymentFields.model_fields if name not in ("provider_model_id", "rpm", "tpm")
)
"""Keys that only make the shorthand deployment; beside `route:` they belong in the route entries. (A model's
`provider_model_id` is its routes' default, and its `rpm`/`tpm` limit the model as well as the shorthand deployment.)"""
