"""What a deployment charges, and how prices in two units compare.

A deployment's own price wins over its model's: its own `pricing`, else its `cost_per_second`, else the model's
`pricing` (models_file.py resolves that once, when models.yaml loads, into the deployment's `pricing`). The price
that orders a call (`cost_priority`, the `cost` strategy) is then the price it is billed at (cost.py).

Per-token prices compare as USD per 1M prompt+completion tokens. A per-second price compares as what those 1M
tokens cost at SECONDS_PER_MTOK, a fixed serving speed of 100 tokens a second: per-second deployments order among
themselves by `cost_per_second` alone, and against per-token ones by that conversion. It is fixed rather than
measured so that an order never flips on noise (a short call's seconds are mostly its time to first token).
"""

from __future__ import annotations

from routing.config.schema import DeploymentConfig

SECONDS_PER_MTOK = 10_000.0  # 1M tokens at 100 tokens a second


def per_million_tokens(dep: DeploymentConfig) -> float:
    """USD per 1M prompt+completion tokens at the deployment's token price (0 when it has none)."""
    return dep.pricing.prompt + dep.pricing.completion


def unit_price(dep: DeploymentConfig) -> float:
    """A comparable price: USD per 1M prompt+completion tokens, a per-second price converted at SECONDS_PER_MTOK."""
    tokens = per_million_tokens(dep)
    return tokens if tokens > 0 else dep.cost_per_second * SECONDS_PER_MTOK
