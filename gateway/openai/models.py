"""The model list's entries: OpenAI's shape plus OpenRouter's model fields (pricing per token, architecture...)."""

from __future__ import annotations

from typing import Any

from routing.config.schema import Pricing
from routing.manager import ModelRoute
from routing.request_routing import DEFAULT_PARAMETERS


def per_token(usd_per_million: float | None) -> str:
    """OpenRouter prices are strings in USD per token; models.yaml holds USD per 1M tokens."""
    if not usd_per_million:
        return "0"
    return f"{usd_per_million / 1_000_000:.12f}".rstrip("0").rstrip(".")


def _pricing(p: Pricing) -> dict[str, str]:
    return {
        "prompt": per_token(p.prompt),
        "completion": per_token(p.completion),
        "request": f"{p.request:g}" if p.request else "0",
        "image": per_token(p.image),
        "input_cache_read": per_token(p.input_cache_reads),
        "input_cache_write": per_token(p.input_cache_writes),
    }


def model_entry(route: ModelRoute, created: int) -> dict[str, Any]:
    m = route.model
    deps = [e.deployment for e in route.entries]
    primary = max(route.entries, key=lambda e: e.weight).deployment
    modality = f"{'+'.join(m.input_modalities)}->{'+'.join(m.output_modalities)}"
    return {
        "id": m.id,
        "object": "model",
        "created": m.created or created,
        "owned_by": m.owned_by or primary.provider,
        "name": m.name,
        "canonical_slug": m.id,
        "description": m.description,
        "context_length": m.context_length,
        "architecture": {
            "modality": modality,
            "input_modalities": list(m.input_modalities),
            "output_modalities": list(m.output_modalities),
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": _pricing(primary.pricing if primary.pricing != Pricing() else m.pricing),
        "top_provider": {
            "context_length": m.context_length,
            "max_completion_tokens": m.max_output_length,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": list(m.supported_params or DEFAULT_PARAMETERS),
        "quantization": m.quantization,
        "aliases": list(m.aliases),
        "providers": sorted({d.provider for d in deps}),
        "endpoints": list(m.endpoints),
    }
