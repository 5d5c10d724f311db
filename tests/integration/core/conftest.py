"""Helpers to build models.yaml routes to fake upstreams."""

from __future__ import annotations

from typing import Any

from tests.support.upstream import FakeUpstream


def route(up: FakeUpstream, weight: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "openai",
        "name": up.name,
        "base_url": up.base_url,
        "api_key": f"sk-test-{up.name}-secret",
        "provider_model_id": f"upstream-{up.name}",
        "weight": weight,
        **extra,
    }


def models(*routes: dict[str, Any], model_id: str = "m", **extra: Any) -> dict[str, Any]:
    return {
        "models": [
            {
                "id": model_id,
                "aliases": [f"{model_id}-alias"],
                "pricing": {"prompt": "1", "completion": "2"},
                "route": list(routes),
                **extra,
            }
        ]
    }
