"""Validated configuration: frozen dataclasses built once at start-up from models.yaml and routing.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field


class ConfigError(Exception):
    """A configuration file is wrong; the message names the file, the field and the fix."""

    def __init__(self, file: str, path: str, problem: str, fix: str = "") -> None:
        self.file, self.path, self.problem, self.fix = file, path, problem, fix
        message = f"{file}: {path}: {problem}" if path else f"{file}: {problem}"
        super().__init__(f"{message}. Fix: {fix}" if fix else message)


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per 1M tokens (as in models.yaml); `request` is USD per call."""

    prompt: float = 0.0
    completion: float = 0.0
    input_cache_reads: float | None = None
    input_cache_writes: float | None = None
    request: float = 0.0
    image: float = 0.0

    @property
    def is_free(self) -> bool:
        return not (self.prompt or self.completion or self.request)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: connect, time to first byte/token, idle gap between stream chunks, whole attempt."""

    connect: float = 5.0
    first_token: float = 30.0
    idle: float = 30.0
    total: float = 300.0


@dataclass(frozen=True, slots=True)
class MockOptions:
    """Behaviour of an in-process mock deployment."""

    ttft_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    completion_tokens: int = 16
    reply: str = ""


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    """One place that serves a model: adapter kind + base URL + upstream model id + weight."""

    name: str
    model_id: str
    kind: str
    provider: str
    base_url: str
    provider_model_id: str
    weight: float
    api_key: str | None = field(default=None, repr=False)
    enabled: bool = True
    disabled_reason: str = ""
    pricing: Pricing = Pricing()
    timeouts: Timeouts = Timeouts()
    region: str = ""
    cost_per_second: float = 0.0
    max_concurrent: int = 0
    rpm: int = 0
    tpm: int = 0
    health_path: str = ""
    health_interval: float = 0.0
    health_timeout: float = 0.0  # seconds per probe; 0 = routing.yaml `timeout`
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    mock: MockOptions = MockOptions()
    data_collection: str = ""  # "allow" | "deny"; "" = by kind and side (routing/request_routing.py)
    zdr: bool | None = None  # zero data retention; None = as data_collection
    quantization: str = ""  # "" = the model's
    completions: str = "translate"  # `native`: /v1/completions passed through; `translate`: mapped onto chat
    reasoning: str = ""  # how a request's `reasoning` reaches it (adapters/reasoning.py); "" = its kind's
    thinking_switch: str = "enable_thinking"  # the chat_template_kwargs key, for `reasoning: chat_template_kwargs`
    messages: str = ""  # "native": serves Anthropic's /v1/messages itself (vLLM 0.17+); "" / "translate": via chat
    responses: str = "translate"  # /v1/responses: "native" passes it to {base_url}/responses, "translate" to chat
    metrics_url: str = field(default="", repr=False)  # the engine's Prometheus endpoint; "" = not scraped
    engine: str = "vllm"  # which metric names `metrics_url` serves: vllm, sglang or llamacpp

    @property
    def key(self) -> str:
        """Globally unique, secret-free identifier: `model/deployment`."""
        return f"{self.model_id}/{self.name}"


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A public model and its deployments."""

    id: str
    name: str
    deployments: tuple[DeploymentConfig, ...]
    aliases: tuple[str, ...] = ()
    context_length: int = 8192
    max_output_length: int = 4096
    pricing: Pricing = Pricing()
    supported_params: tuple[str, ...] = ()
    input_modalities: tuple[str, ...] = ("text",)
    output_modalities: tuple[str, ...] = ("text",)
    quantization: str = "unknown"  # what OpenRouter says of a model whose provider declared none
    description: str = ""
    owned_by: str = ""
    created: int = 0
    strategy: str = ""
    rpm: int = 0
    tpm: int = 0
    endpoints: tuple[str, ...] = ("chat",)  # what it serves: "chat" (chat and text completions), "embeddings"

    def serves(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    @property
    def enabled_deployments(self) -> tuple[DeploymentConfig, ...]:
        return tuple(d for d in self.deployments if d.enabled)


@dataclass(frozen=True, slots=True)
class EndpointGroup:
    """A routing.yaml `local_deployment` / `remote_deployment` entry."""

    endpoint: str
    models: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """A named strategy from routing.yaml `strategies:`."""

    name: str
    kind: str
    local_fraction: float = 0.5
    weights: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class LocalFirstConfig:
    """routing.yaml `local_first:`: when a local deployment is full, when spilling stops, what spill may cost."""

    max_waiting: int = 4  # full above this many queued requests
    max_kv_usage: float = 0.90  # ... or above this KV-cache use (0-1)
    resume_below: float = 0.5  # spilling stops when load is back under this fraction of both limits
    scrape_interval: float = 1.0  # seconds between scrapes of each local deployment's metrics
    scrape_timeout: float = 0.5  # seconds one scrape may take
    spill_budget_usd_per_hour: float | None = None  # cap on spilled traffic's cost over the last hour


@dataclass(frozen=True, slots=True)
class AffinityConfig:
    """routing.yaml `affinity:`: keep a session or a shared prompt prefix on one local replica."""

    enabled: bool = True
    prefix_chars: int = 2000  # how much of the messages the prefix hash reads; 0 = session keys only


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """routing.yaml: how local and remote deployments share each model's traffic."""

    strategy: str = "fixed"
    local_fraction: float = 0.5
    timeout: float = 2.0
    health_check: float = 0.0
    local: tuple[EndpointGroup, ...] = ()
    remote: tuple[EndpointGroup, ...] = ()
    strategies: tuple[StrategyConfig, ...] = ()
    model_strategies: tuple[tuple[str, str], ...] = ()
    local_first: LocalFirstConfig = LocalFirstConfig()
    affinity: AffinityConfig = AffinityConfig()
    source: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything loaded from the config files."""

    models: tuple[ModelConfig, ...]
    routing: RoutingConfig
    aliases: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    models_source: str = ""

    def resolve(self, name: str) -> ModelConfig | None:
        """The model for a public id or alias."""
        for model in self.models:
            if model.id == name:
                return model
        for alias, target in self.aliases:
            if alias == name:
                return self.resolve(target)
        return None
