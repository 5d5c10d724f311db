"""OpenRouter's routing fields of a request body, checked: `models` (fallback models), the `provider` object and
the model variants `:nitro` / `:floor`. Errors are 400s that name the field; routing/request_routing.py applies
what they ask."""

from __future__ import annotations

from typing import Any, cast

from gateway.errors import APIError
from routing.request_routing import SORTS, VARIANTS, MaxPrice, ProviderRouting, Sort

_FIELDS = frozenset(
    {
        "order", "only", "ignore", "allow_fallbacks", "sort", "max_price", "require_parameters", "data_collection",
        "zdr", "quantizations", "preferred_min_throughput", "preferred_max_latency", "enforce_distillable_text",
        "experimental",
    }
)  # fmt: skip


_PRICES = ("prompt", "completion", "request")


def _bad(param: str, message: str) -> APIError:
    return APIError(400, message, code="invalid_value", param=param)


def split_variant(model: str) -> tuple[str, str]:
    """`llama:nitro` -> (`llama`, `throughput`); a model without a known variant suffix is returned as it is."""
    base, sep, suffix = model.rpartition(":")
    if sep and base and suffix in VARIANTS:
        return base, VARIANTS[suffix]
    return model, ""


def fallback_models(body: dict[str, Any]) -> tuple[str, ...]:
    """`models`: the model names to try in order (the primary first when `model` is absent)."""
    value = body.get("models")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(m, str) and m.strip() for m in value):
        raise _bad("models", "`models` must be a list of model names")
    if len(value) > 16:
        raise _bad("models", f"`models` may list at most 16 models, got {len(value)}")
    return tuple(value)


def _names(provider: dict[str, Any], name: str) -> tuple[str, ...]:
    value = provider.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad(f"provider.{name}", f"`provider.{name}` must be a list of provider names")
    return tuple(value)


def _flag(provider: dict[str, Any], name: str, default: bool) -> bool:
    value = provider.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(f"provider.{name}", f"`provider.{name}` must be true or false")
    return value


def _number(value: Any, param: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, dict):  # {p50, p75, p90, p99}: the gateway keeps one decaying average, read as p50
        value = value.get("p50", next(iter(value.values()), None))
        if value is None:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _bad(param, f"`{param}` must be a number >= 0 (or an object of percentiles)")
    return float(value)


def _sort(value: Any) -> str:
    if isinstance(value, dict):  # {by, partition}
        partition = value.get("partition", "model")
        if partition not in ("model", None):
            raise _bad(
                "provider.sort.partition",
                '`provider.sort.partition` "none" is not supported: each model\'s deployments are sorted on their own',
            )
        value = value.get("by")
    if value not in SORTS:
        raise _bad("provider.sort", f"`provider.sort` must be one of {list(SORTS)}, got {value!r}")
    return str(value)


def _max_price(value: Any) -> MaxPrice | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("provider.max_price", "`provider.max_price` must be an object: {prompt, completion, request}")
    prices = {
        name: _number(value.get(name), f"provider.max_price.{name}") for name in ("prompt", "completion", "request")
    }
    return MaxPrice(**prices)


def provider_routing(body: dict[str, Any], variant: str) -> ProviderRouting | None:
    """The `provider` object (and a `:nitro` / `:floor` variant) as ProviderRouting; None when neither is given."""
    provider = body.get("provider")
    if provider is None and not variant:
        return None
    if provider is None:
        provider = {}
    if not isinstance(provider, dict):
        raise _bad("provider", "`provider` must be an object")
    unknown = sorted(set(provider) - _FIELDS)
    if unknown:
        raise _bad(f"provider.{unknown[0]}", f"unknown field `provider.{unknown[0]}`")
    collection = provider.get("data_collection") or "allow"
    if collection not in ("allow", "deny"):
        raise _bad("provider.data_collection", '`provider.data_collection` must be "allow" or "deny"')
    quantizations = _names(provider, "quantizations")
    sort = _sort(provider["sort"]) if provider.get("sort") is not None else variant
    return ProviderRouting(
        order=_names(provider, "order"),
        only=_names(provider, "only"),
        ignore=_names(provider, "ignore"),
        allow_fallbacks=_flag(provider, "allow_fallbacks", True),
        sort=cast(Sort, sort),  # checked against SORTS
        max_price=_max_price(provider.get("max_price")),
        require_parameters=_flag(provider, "require_parameters", False),
        data_collection="deny" if collection == "deny" else "allow",
        zdr=_flag(provider, "zdr", False),
        quantizations=quantizations,
        preferred_min_throughput=_number(provider.get("preferred_min_throughput"), "provider.preferred_min_throughput"),
        preferred_max_latency=_number(provider.get("preferred_max_latency"), "provider.preferred_max_latency"),
    )
