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
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or value == float("inf"):
        return 0
    return int(value)


def call_cost(pricing: Pricing, usage: dict[str, Any] | None, seconds: float = 0.0, per_second: float = 0.0) -> float:
    """USD for one call. Reasoning tokens are part of completion_tokens (OpenAI's convention): never charged twice.

    Cached prompt tokens are charged at the cache-read price when there is one; time-priced deployments
    (cost_per_second) are charged by wall-clock seconds when they have no token price.
    """
    prompt, completion, _reasoning, cached, _total = usage_numbers(usage)
    cached = min(cached, prompt)
    writes = _count(_detail(usage or {}, "prompt_tokens_details", "cache_write_tokens"))
    read_price = pricing.prompt if pricing.input_cache_reads is None else pricing.input_cache_reads
    write_price = pricing.prompt if pricing.input_cache_writes is None else pricing.input_cache_writes
    writes = min(writes, prompt - cached)
    tokens = (
        (prompt - cached - writes) * pricing.prompt
        + cached * read_price
        + writes * write_price
        + completion * pricing.completion
    ) / 1_000_000
    if tokens == 0 and per_second > 0:
        return seconds * per_second
    return tokens + pricing.request
