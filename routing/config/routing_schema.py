"""routing.yaml as pydantic models: which keys exist, their types and bounds (after `${VAR}` expansion)."""

from __future__ import annotations

from pydantic import Field

from routing.config.fields import FileModel, Fraction, Number, Strings
from routing.config.schema import RoutingConfig, StrategyConfig

STRATEGY_KINDS = ("fixed", "weighted", "cost", "latency")
_ROUTING, _STRATEGY = RoutingConfig(), StrategyConfig("", "")


class RoutingParameterFile(FileModel):
    """`routing_parameter:`: the share of each model's traffic its local deployments get."""

    local_fraction: Fraction = _ROUTING.local_fraction


class StrategyFile(FileModel):
    """One named entry of `strategies:`; `weights` are keyed by deployment name or provider."""

    kind: str = Field(default="fixed", json_schema_extra={"enum": list(STRATEGY_KINDS)})
    local_fraction: Fraction = _STRATEGY.local_fraction
    weights: dict[str, Number] = {}


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
