"""GET /health (real state: 200 while some deployment can serve, 503 otherwise) and GET /ready."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.services import Services


def health_report(services: Services) -> tuple[int, dict[str, Any]]:
    models: dict[str, Any] = {}
    servable = 0
    degraded = False
    total_deps = enabled_deps = available_deps = 0
    disabled: list[dict[str, str]] = []
    for model in services.config.models:
        route = services.manager.route(model.id)
        enabled = [d for d in model.deployments if d.enabled]
        available = [e for e in route.entries if e.available] if route else []
        total_deps += len(model.deployments)
        enabled_deps += len(enabled)
        available_deps += len(available)
        if available:
            servable += 1
        if len(available) < len(model.deployments):
            degraded = True
        disabled.extend(
            {"model": model.id, "deployment": d.name, "reason": d.disabled_reason}
            for d in model.deployments
            if not d.enabled
        )
        models[model.id] = {
            "deployments_total": len(model.deployments),
            "deployments_enabled": len(enabled),
            "deployments_available": len(available),
            "status": "ok" if available else "unavailable",
        }
    if servable == 0:
        status, code = "unhealthy", 503
    else:
        status, code = ("degraded" if degraded else "healthy"), 200
    body: dict[str, Any] = {
        "status": status,
        "timestamp": int(time.time()),
        "version": services.settings.version,
        "uptime_s": round(time.time() - services.started_at, 1),
        "models_total": len(services.config.models),
        "models_servable": servable,
        "deployments_total": total_deps,
        "deployments_enabled": enabled_deps,
        "deployments_available": available_deps,
        "disabled_deployments": disabled,
        "models": models,
        "call_log": {"backend": services.call_log.backend, **services.call_log.counters()},
    }
    if code == 503:
        body["reason"] = "no deployment of any model can serve" if models else "no models configured"
    return code, body


async def health(request: Request) -> JSONResponse:
    code, body = health_report(request.app.state.services)
    return JSONResponse(body, status_code=code)


async def ready(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "timestamp": int(time.time())})
