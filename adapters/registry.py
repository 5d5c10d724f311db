"""Which adapter translates each schema: one instance per kind, built from its KindSpec."""

from __future__ import annotations

from collections.abc import Callable

from adapters.anthropic import AnthropicAdapter
from adapters.base import Adapter
from adapters.beacon import GolemAdapter, ModalAdapter, RunPodAdapter
from adapters.kinds import KindSpec
from adapters.openai_compat import OpenAIAdapter

_FACTORIES: dict[str, Callable[[KindSpec], Adapter]] = {
    "openai": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "golem": GolemAdapter,
    "modal": ModalAdapter,
    "runpod": RunPodAdapter,
}


def completions_adapter_for(spec: KindSpec) -> Adapter:
    """The adapter that passes legacy completions through to a kind's own `/completions` (OpenAI schema only)."""
    if spec.schema != "openai":
        raise KeyError(f"kind {spec.kind!r} has schema {spec.schema!r}, which has no /completions")
    return OpenAIAdapter(spec, path="completions")


def adapter_for(spec: KindSpec) -> Adapter:
    """The adapter for a kind's schema; KeyError for a schema no adapter translates."""
    factory = _FACTORIES.get(spec.schema)
    if factory is not None:
        return factory(spec)
    known = ", ".join(sorted(_FACTORIES))
    raise KeyError(f"kind {spec.kind!r} has schema {spec.schema!r}, which no adapter translates (known: {known})")
