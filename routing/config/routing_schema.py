"""routing.yaml as pydantic models: which keys exist, their types and bounds (after `${VAR}` expansion)."""

from __future__ import annotations

from pydantic import Field

from routing.config.fields import Count, FileModel, Fraction, Number, Seconds, Strings
from routing.config.schema import AffinityConfig, LocalFirstConfig, RoutingConfig, StrategyConfig

STRATEGY_KINDS = ("fixed", "weighted", "cost", "latency", "local_first")
_ROUTING, _STRATEGY = RoutingConfig(), StrategyConfig("", "")
_LOCAL_FIRST, _AFFINITY = LocalFirstConfig(), AffinityConfig()


class RoutingParameterFile(FileModel):
    """`routing_parameter:`: the share of each model's traffic its local deployments get."""

    local_fraction: Fraction = _ROUTING.local_fraction


class StrategyFile(FileModel):
    """One named entry of `strategies:`; `weights` are keyed by deployment name or provider."""

    kind: str = Field(default="fixed", json_schema_extra={"enum": list(STRATEGY_KINDS)})
    local_fraction: Fraction = _STRATEGY.local_fraction
    weights: dict[str, Number] = {}


class LocalFirstFile(FileModel):
    """`local_first:`: when a local deployment counts as full, when spilling stops, what spill may cost."""

    max_waiting: Count = _LOCAL_FIRST.max_waiting
    max_kv_usage: Fraction = _LOCAL_FIRST.max_kv_usage
    resume_below: Fraction = _LOCAL_FIRST.resume_below
    scrape_interval: Seconds = _LOCAL_FIRST.scrape_interval
    scrape_timeout: Seconds | None = None  # default: 0.5 s, or scrape_interval when that is shorter
    spill_budget_usd_per_hour: Number | None = _LOCAL_FIRST.spill_budget_usd_per_hour


class AffinityFile(FileModel):
    """`affinity:`: session and prompt-prefix affinity among a model's local deployments."""

    enabled: bool = _AFFINITY.enabled
    prefix_chars: Count = _AFFINITY.prefix_chars


class EndpointGroupFile(FileModel):
    """A `local_deployment` / `remote_deployment` entry: an endpoint and the models it serves."""

    endpoint: str
    models: Strings = ()


class RoutingFile(FileModel):
    """The whole of routing.yaml."""

    routing_strategy: str = _ROUTING.strategy
    routing_parameter: RoutingParameterFile = RoutingParameterFile()
    timeout: Number = _ROUTING.timeout
    health_check: Number = _ROUTING.health_check
    local_deployment: list[EndpointGroupFile] = []
    remote_deployment: list[EndpointGroupFile] = []
    strategies: dict[str, StrategyFile] = {}
    model_strategies: dict[str, str] = {}
    local_first: LocalFirstFile = LocalFirstFile()
    affinity: AffinityFile = AffinityFile()
