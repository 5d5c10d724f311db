"""Embeddings through the executor's one retry loop: the same weights, fallback, limits and breakers as chat,
with an attempt that reads one deployment's embeddings answer whole."""

from __future__ import annotations

import time
from typing import Any

from adapters.embeddings import EmbeddingsAdapter
from adapters.kinds import kind_spec
from routing.call import Call
from routing.config.schema import DeploymentConfig
from routing.errors import NoDeploymentAvailable, UpstreamError
from routing.executor import Executor
from routing.limits.admission import Admission
from routing.manager import ModelRoute
from routing.request_routing import ProviderRouting
from routing.stream import total_tokens


async def embed(
    executor: Executor,
    route: ModelRoute,
    payload: dict[str, Any],
    call: Call,
    wants: ProviderRouting | None = None,
) -> dict[str, Any]:
    """One embeddings call: the upstream's answer (`data`, `usage`), falling back as chat does."""
    transport, guards = executor.transport, executor.guards

    async def attempt(dep: DeploymentConfig, payload: dict[str, Any], budget: float, admitted: Admission) -> Any:
        began = time.perf_counter()
        try:
            spec = kind_spec(dep.kind)
            if spec is None:
                raise NoDeploymentAvailable(f"deployment {dep.name} has unknown kind {dep.kind}")
            adapter = EmbeddingsAdapter(spec)
            request = adapter.build(dep, payload)
            resp = await transport.open(dep, request, adapter, budget)
            result = await transport.read_json(dep, resp, adapter, request)
        except UpstreamError as exc:
            await guards.failed(admitted, exc)
            raise
        except BaseException:
            await guards.abandoned(admitted)
            raise
        call.upstream_wait += time.perf_counter() - began
        call.add_attempt(dep, "ok", 200, began)
        call.first_token_at = time.perf_counter()
        call.usage = result.get("usage") or None
        call.deployment, call.model_id = dep, dep.model_id
        await guards.succeeded(admitted, total_tokens(call))
        return result

    result: dict[str, Any] = await executor.run(route, payload, call, attempt, wants)
    return result
