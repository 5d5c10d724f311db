"""Project Beacon's router API: POST /inference (and /v1/inference), GET /providers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from gateway.beacon.flow import failure, parse_inference, run_inference
from gateway.errors import error_headers
from gateway.lifespan import Services
from gateway.requests import client_info, read_json
from routing.errors import GatewayError


async def inference(request: Request) -> Response:
    services: Services = request.app.state.services
    request_id = request.scope["state"]["request_id"]
    trace = request.headers.get("x-trace-id", "")
    try:
        body = await read_json(request, services.settings.max_body_bytes)
        req = parse_inference(body, trace)
    except GatewayError as exc:
        return _json(exc.status, failure(exc, request_id, trace))
    answer = await run_inference(
        services, req, request_id, client_info(request, "/inference"), receive=request.receive, scope=request.scope
    )
    return _json(answer.status, answer.body, answer.headers)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def refusal(error: GatewayError, scope: Scope) -> Response:
    """A call refused before its route ran (a missing or wrong key), in Beacon's shape."""
    request_id = scope.get("state", {}).get("request_id", "")
    return _json(error.status, failure(error, request_id, ""), error_headers(error))


def provider_rows(services: Services, region: str = "") -> list[dict[str, Any]]:
    """Every deployment with its type, region, health, cost, observed latency and success rate, in-flight."""
    rows = []
    observed = services.manager.observed()
    for dep in services.manager.deployments():
        if region and dep.region != region:
            continue
        state = services.deployments.describe(dep) if dep.enabled else {}
        route = services.manager.route(dep.model_id)
        entry = next((e for e in route.entries if e.deployment.name == dep.name), None) if route else None
        healthy = bool(dep.enabled and entry and entry.available and not state.get("circuit_cooling"))
        healthy = healthy and state.get("available", True)
        ttft = observed.get(dep.key)
        breaker = services.executor.guards.breakers.state(dep.key)
        rows.append(
            {
                "name": dep.name,
                "model": dep.model_id,
                "type": dep.kind,
                "provider": dep.provider,
                "region": dep.region,
                "healthy": healthy,
                "enabled": dep.enabled,
                "reason": dep.disabled_reason or (entry.reason if entry else ""),
                "cost_per_second": dep.cost_per_second,
                "pricing_per_million": {"prompt": dep.pricing.prompt, "completion": dep.pricing.completion},
                "avg_latency": None if ttft is None or ttft.ttft_ms is None else round(ttft.ttft_ms / 1000.0, 4),
                "success_rate": None if not breaker.recent_calls else round(1.0 - breaker.error_rate, 4),
                "in_flight": state.get("in_flight", 0),
                "max_concurrent": dep.max_concurrent,
                "circuit": state.get("circuit", "n/a"),
                "health": state.get("health", "n/a"),
                "last_health_check": state.get("last_health_check"),
                "weight": round(entry.weight, 6) if entry else 0.0,
            }
        )
    return rows


async def providers(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    region = request.query_params.get("region", "")
    return JSONResponse({"providers": provider_rows(services, region), "region": region or None})
