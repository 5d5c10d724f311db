"""Two fake upstreams (a, b) in threads and a helper to build models.yaml routes to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.upstream import FakeUpstream


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream.in_thread("a") as a, FakeUpstream.in_thread("b") as b:
        yield a, b


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
