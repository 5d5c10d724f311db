"""GET /health (real state: 200 while some deployment can serve, 503 with the reason otherwise) and GET /ready.

`/health` is public, so what anyone may read is status and counts; deployment names (`local@gpu-node-7...`),
hosts and their reasons are operator knowledge and come only with admin access (the admin key, or keyless on a
loopback-only gateway).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.access import Access, AccessPolicy
from gateway.lifespan import Services

# What a caller without admin access reads of a model's entry: counts, no deployment names
_PUBLIC_MODEL_KEYS = ("status", "deployments_total", "deployments_enabled", "deployments_available")


def health_report(services: Services) -> tuple[int, dict[str, Any]]:
    models: dict[str, Any] = {}
    servable_models = 0
    total = healthy_count = 0
    regions: set[str] = set()
    disabled: list[dict[str, str]] = []
    for model in services.config.models:
        route = services.manager.route(model.id)
        rows = []
        can_serve = 0
        for dep in model.deployments:
            total += 1
            if not dep.enabled:
                disabled.append({"model": model.id, "deployment": dep.name, "reason": dep.disabled_reason})
                rows.append({"deployment": dep.name, "enabled": False, "serving": False, "reason": dep.disabled_reason})
                continue
            entry = next((e for e in route.entries if e.deployment.name == dep.name), None) if route else None
            state = services.deployments.describe(dep)
            # as calls see it: an open circuit whose cooldown is over (or whose probe passed) takes its trial
            serving = bool(entry and entry.available) and not state["circuit_cooling"] and state["available"]
            if serving:
                can_serve += 1
                healthy_count += 1
                if dep.region:
                    regions.add(dep.region)
            rows.append(
                {
                    "deployment": dep.name,
                    "enabled": True,
                    "serving": serving,
                    "region": dep.region,
                    "health": state["health"],
                    "circuit": state["circuit"],
                    "reason": "" if serving else (state["reason"] or f"circuit {state['circuit']}"),
                }
            )
        if can_serve:
            servable_models += 1
        models[model.id] = {
            "status": "ok" if can_serve == len(model.deployments) else ("degraded" if can_serve else "unavailable"),
            "deployments_total": len(model.deployments),
            "deployments_enabled": sum(1 for d in model.deployments if d.enabled),
            "deployments_available": can_serve,
            "deployments": rows,
        }
    fleet = services.fleet
    shared = "not configured" if fleet is None else fleet.link.status
    if servable_models == 0:
        status, code = "unhealthy", 503
    elif healthy_count < total or (fleet is not None and not fleet.up):
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    body: dict[str, Any] = {
        "status": status,
        "timestamp": int(time.time()),
        "version": services.settings.version,
        "uptime_s": round(time.time() - services.started_at, 1),
        "providers_total": total,
        "providers_healthy": healthy_count,
        "regions": sorted(regions),
        "models_total": len(services.config.models),
        "models_servable": servable_models,
        "disabled_deployments": disabled,
        "models": models,
        "call_log": {"backend": services.call_log.backend, **services.call_log.counters()},
        # Redis shared by every worker and replica (REDIS_URL): "ok", or "degraded: shared state unavailable"
        "shared_state": shared,
    }
    if code == 503:
        body["reason"] = (
            "no deployment of any model can serve (disabled, failing health checks or circuit open)"
            if models
            else "no models configured"
        )
    return code, body


def public_view(body: dict[str, Any]) -> dict[str, Any]:
    """The report without what names a deployment or a host: status and counts only."""
    view = {k: v for k, v in body.items() if k not in ("models", "disabled_deployments")}
    view["models"] = {m: {k: e[k] for k in _PUBLIC_MODEL_KEYS} for m, e in body["models"].items()}
    return view


async def health(request: Request) -> JSONResponse:
    code, body = health_report(request.app.state.services)
    policy: AccessPolicy = request.app.state.access
    client = request.client.host if request.client else ""
    authorization = request.headers.get("authorization", "")
    if not policy.decide(Access.ADMIN, authorization, client, request.scope.get("headers", ())).allowed:
        body = public_view(body)
    return JSONResponse(body, status_code=code)


async def ready(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "timestamp": int(time.time())})
