"""OpenRouter's request-level routing, pure: the `provider` object narrows and reorders the deployments a model's
strategy offers; it never bypasses health, circuits or limits (the executor still admits each attempt).

Filters (`only`, `ignore`, `data_collection`, `zdr`, `quantizations`, `max_price`, `require_parameters`) drop
deployments; the first one that leaves none is named in the answer. Ordering (`sort`, `order`) replaces the
weighted draw with a fixed order; `preferred_*` only moves deployments that miss them to the back;
`allow_fallbacks: false` keeps only the listed providers (or the primary, when none are listed).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from routing.config.schema import DeploymentConfig, ModelConfig
from routing.price import SECONDS_PER_MTOK, per_million_tokens, unit_price
from routing.strategies import Observed

Sort = Literal["", "price", "throughput", "latency"]
SORTS: tuple[str, ...] = ("price", "throughput", "latency")
# The model variants that are a sort: `model:nitro` and `model:floor`.
VARIANTS = {"nitro": "throughput", "floor": "price"}
# Request parameters that `require_parameters` checks against a model's `supported_params` (and that are
# dropped for a model that declares it does not support them); every other field is forwarded untouched.
PARAMETERS = frozenset(
    {
        "temperature", "top_p", "top_k", "min_p", "top_a", "frequency_penalty", "presence_penalty",
        "repetition_penalty", "seed", "max_tokens", "logit_bias", "logprobs", "top_logprobs", "response_format",
        "structured_outputs", "stop", "tools", "tool_choice", "parallel_tool_calls", "include_reasoning",
        "reasoning", "web_search_options", "verbosity",
    }
)  # fmt: skip
# What a model that declares no `supported_params` is taken to support (the list /v1/models shows for it).
DEFAULT_PARAMETERS = ("temperature", "top_p", "max_tokens", "stop", "seed", "stream")


@dataclass(frozen=True, slots=True)
class MaxPrice:
    """USD per 1M tokens (prompt, completion); USD per call (request). None: no limit."""

    prompt: float | None = None
    completion: float | None = None
    request: float | None = None


@dataclass(frozen=True, slots=True)
class ProviderRouting:
    """A request's `provider` object (and model variant), checked."""

    order: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    sort: Sort = ""
    max_price: MaxPrice | None = None
    require_parameters: bool = False
    data_collection: Literal["allow", "deny"] = "allow"
    zdr: bool = False
    quantizations: tuple[str, ...] = ()
    preferred_min_throughput: float | None = None  # output tokens per second
    preferred_max_latency: float | None = None  # seconds to first token

    @property
    def fixed_order(self) -> bool:
        """`sort` or `order` given: no weighted draw for this call."""
        return bool(self.sort or self.order)


class NoMatch(Exception):
    """The constraints left no deployment: `constraint` names the one that emptied the list."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


def matches(dep: DeploymentConfig, names: Collection[str]) -> bool:
    """A provider slug names a deployment by its provider, kind or own name (case-insensitive)."""
    return bool({dep.provider.lower(), dep.kind.lower(), dep.name.lower()} & {n.lower() for n in names})


def data_collection_of(dep: DeploymentConfig, local: bool) -> str:
    """`deny` (keeps nothing) or `allow`: as configured, else `deny` for our own GPUs (vllm, routing.yaml local)."""
    if dep.data_collection:
        return dep.data_collection
    return "deny" if dep.kind == "vllm" or local else "allow"


def zdr_of(dep: DeploymentConfig, local: bool) -> bool:
    return dep.zdr if dep.zdr is not None else data_collection_of(dep, local) == "deny"


def sent_parameters(payload: dict[str, object]) -> set[str]:
    """The routing-relevant parameters a request sets (`max_completion_tokens` counts as `max_tokens`)."""
    sent = {name for name in payload if name in PARAMETERS and payload[name] is not None}
    if payload.get("max_completion_tokens") is not None:
        sent.add("max_tokens")
    return sent


def supported(model: ModelConfig) -> frozenset[str]:
    return frozenset(model.supported_params or DEFAULT_PARAMETERS)


def unsupported_dropped(model: ModelConfig, payload: dict[str, object]) -> dict[str, object]:
    """The payload without the parameters a model declares it does not support (none dropped when it declares
    nothing: an undeclared model is sent everything, as before)."""
    if not model.supported_params:
        return payload
    allowed = set(model.supported_params)
    drop = {name for name in sent_parameters(payload) if name not in allowed}
    if "max_tokens" in drop:
        drop.add("max_completion_tokens")
    return {k: v for k, v in payload.items() if k not in drop} if drop else payload


def _within(dep: DeploymentConfig, limit: MaxPrice) -> bool:
    p = dep.pricing
    if per_million_tokens(dep) == 0 and dep.cost_per_second > 0:  # priced by the second: at 100 tokens/s
        prompt = completion = dep.cost_per_second * SECONDS_PER_MTOK
    else:
        prompt, completion = p.prompt, p.completion
    return not (
        (limit.prompt is not None and prompt > limit.prompt)
        or (limit.completion is not None and completion > limit.completion)
        or (limit.request is not None and p.request > limit.request)
    )


def narrow(
    order: Sequence[DeploymentConfig],
    model: ModelConfig,
    wants: ProviderRouting,
    sent: Collection[str],
    local: Callable[[DeploymentConfig], bool],
) -> list[DeploymentConfig]:
    """The deployments that meet every constraint, in their order; NoMatch names the one that left none."""
    kept = list(order)
    checks: list[tuple[str, Callable[[DeploymentConfig], bool]]] = []
    if wants.only:
        checks.append((f"provider.only {list(wants.only)}", lambda d: matches(d, wants.only)))
    if wants.ignore:
        checks.append((f"provider.ignore {list(wants.ignore)}", lambda d: not matches(d, wants.ignore)))
    if not wants.allow_fallbacks and wants.order:
        checks.append(
            (f"provider.order {list(wants.order)} with allow_fallbacks false", lambda d: matches(d, wants.order))
        )
    if wants.data_collection == "deny":
        checks.append(('provider.data_collection "deny"', lambda d: data_collection_of(d, local(d)) == "deny"))
    if wants.zdr:
        checks.append(("provider.zdr", lambda d: zdr_of(d, local(d))))
    if wants.quantizations:
        allowed = {q.lower() for q in wants.quantizations}
        checks.append(
            (f"provider.quantizations {list(wants.quantizations)}", lambda d: _quantization(d, model) in allowed)
        )
    if wants.max_price is not None:
        limit = wants.max_price
        checks.append(("provider.max_price", lambda d: _within(d, limit)))
    if wants.require_parameters:
        missing = sorted(set(sent) - supported(model))
        if missing:
            raise NoMatch(f"provider.require_parameters (no deployment of {model.id} supports {', '.join(missing)})")
    for constraint, keep in checks:
        kept = [d for d in kept if keep(d)]
        if not kept:
            raise NoMatch(constraint)
    return kept


def _quantization(dep: DeploymentConfig, model: ModelConfig) -> str:
    return (dep.quantization or model.quantization or "unknown").lower()


def reorder(
    order: Sequence[DeploymentConfig], wants: ProviderRouting, measured: Callable[[DeploymentConfig], Observed]
) -> list[DeploymentConfig]:
    """`order` (weighted, or by weight when the order is fixed) sorted as the request asks; stable, so equal ones
    keep the strategy's order."""
    result = list(order)
    if wants.sort:
        result.sort(key=_sort_key(wants.sort, measured))
    if wants.order:
        rank = {name.lower(): i for i, name in enumerate(wants.order)}

        def position(dep: DeploymentConfig) -> int:
            hits = [rank[n] for n in (dep.name.lower(), dep.provider.lower(), dep.kind.lower()) if n in rank]
            return min(hits) if hits else len(rank)

        result.sort(key=position)
    if wants.preferred_min_throughput is not None or wants.preferred_max_latency is not None:
        result.sort(key=lambda d: _misses_preference(d, wants, measured(d)))
    if not wants.allow_fallbacks and not wants.order and not wants.only:
        result = result[:1]  # the primary only
    return result


def _sort_key(sort: str, measured: Callable[[DeploymentConfig], Observed]) -> Callable[[DeploymentConfig], float]:
    if sort == "price":
        return unit_price
    if sort == "throughput":  # fastest first, unmeasured last
        return lambda d: -(measured(d).tokens_per_second or 0.0)
    return lambda d: float("inf") if (t := measured(d).ttft_ms) is None else t


def _misses_preference(dep: DeploymentConfig, wants: ProviderRouting, seen: Observed) -> bool:
    """Observed below the throughput or above the latency asked for (an unmeasured deployment misses nothing)."""
    slow = (
        wants.preferred_min_throughput is not None
        and seen.tokens_per_second is not None
        and seen.tokens_per_second < wants.preferred_min_throughput
    )
    late = (
        wants.preferred_max_latency is not None
        and seen.ttft_ms is not None
        and seen.ttft_ms > wants.preferred_max_latency * 1000.0
    )
    return slow or late
