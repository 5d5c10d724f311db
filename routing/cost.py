"""Cost of a call from the deployment's pricing (USD per 1M tokens) and the upstream's usage."""

from __future__ import annotations

from typing import Any

from routing.config.schema import Pricing


def usage_numbers(usage: dict[str, Any] | None) -> tuple[int, int, int, int, int]:
    """(prompt, completion, reasoning, cached, total) tokens from an OpenAI-shaped usage object."""
    if not usage:
        return 0, 0, 0, 0, 0
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    reasoning = _count(_detail(usage, "completion_tokens_details", "reasoning_tokens"))
    cached = _count(_detail(usage, "prompt_tokens_details", "cached_tokens"))
    total = _count(usage.get("total_tokens")) or prompt + completion
    return prompt, completion, reasoning, cached, total


def _detail(usage: dict[str, Any], group: str, name: str) -> Any:
    details = usage.get(group)
    return details.get(name) if isinstance(details, dict) else None


def _count(value: Any) -> int:
    """A token count as an upstream wrote it; anything else (a string, a list, NaN, a negative) counts 0: the
    upstream's odd usage must not cost the call its row (or its price)."""
    if type(value) is int:  # what JSON usage holds (not a bool): five of these per usage, six usages per call
        return value if value >= 0 else 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or value == float("inf"):
        return 0
    return int(value)


def _prompt_side(pricing: Pricing, usage: dict[str, Any] | None) -> float:
    """USD for the prompt tokens: cached ones at the cache-read price, written ones at the cache-write price."""
    prompt, _completion, _reasoning, cached, _total = usage_numbers(usage)
    cached = min(cached, prompt)
    writes = min(_count(_detail(usage or {}, "prompt_tokens_details", "cache_write_tokens")), prompt - cached)
    read_price = pricing.prompt if pricing.input_cache_reads is None else pricing.input_cache_reads
    write_price = pricing.prompt if pricing.input_cache_writes is None else pricing.input_cache_writes
    return ((prompt - cached - writes) * pricing.prompt + cached * read_price + writes * write_price) / 1_000_000


def cost_details(pricing: Pricing, usage: dict[str, Any] | None, cost: float) -> dict[str, float]:
    """OpenRouter's `cost_details`: `cost` split into its prompt side and the rest (completion tokens, a per-call
    price, or all of a per-second price)."""
    prompt_usd = round(min(_prompt_side(pricing, usage), cost), 10)
    return {
        "upstream_inference_cost": cost,
        "upstream_inference_prompt_cost": prompt_usd,
        "upstream_inference_completions_cost": round(cost - prompt_usd, 10),
    }


def call_cost(pricing: Pricing, usage: dict[str, Any] | None, seconds: float = 0.0, per_second: float = 0.0) -> float:
    """USD for one call. Reasoning tokens are part of completion_tokens (OpenAI's convention): never charged twice.

    Cached prompt tokens are charged at the cache-read price when there is one; time-priced deployments
    (cost_per_second) are charged by wall-clock seconds when they have no token price.
    """
    completion = usage_numbers(usage)[1]
    tokens = _prompt_side(pricing, usage) + completion * pricing.completion / 1_000_000
    if tokens == 0 and per_second > 0:
        return seconds * per_second
    return tokens + pricing.request
