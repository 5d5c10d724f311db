"""GET /monitoring/state: what the dashboard shows, in one admin JSON snapshot built from the in-memory state
the gateway already keeps (routing, health, circuits, in-flight, engine load, spill state and budget) and the
last minutes of finished calls (gateway/telemetry/recent.py). Computed when asked, never per call."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.lifespan import Services

# what a deployment row of /routing carries that the dashboard's table shows
_ROW_KEYS = (
    "deployment",
    "provider",
    "kind",
    "side",
    "weight",
    "enabled",
    "available",
    "reason",
    "health",
    "circuit",
    "circuit_retry_in_s",
    "recent_error_rate",
    "in_flight",
    "last_health_check",
    "last_health_error",
    "load",
)


def monitoring_state(services: Services, recent: dict[str, Any]) -> dict[str, Any]:
    """Every deployment by model with its region, health, circuit, in-flight and load; each model's spill
    state; the spill budget; and the recent calls' figures."""
    snapshot = services.routing_snapshot()
    regions = {(d.model_id, d.name): d.region for d in services.manager.deployments()}
    deployments: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    for model_id, info in snapshot["models"].items():
        models[model_id] = {
            "strategy": info["strategy"],
            "kind": info["kind"],
            "served": info["served"],
            "spilling": info.get("spilling", False),
            "spilling_since": info.get("spilling_since"),
        }
        for row in info["deployments"]:
            entry = {key: row[key] for key in _ROW_KEYS if key in row}
            entry["model"] = model_id
            entry["region"] = regions.get((model_id, row["deployment"]), "")
            deployments.append(entry)
    return {
        "timestamp": time.time(),
        "version": services.settings.version,
        "uptime_s": round(time.time() - services.started_at, 1),
        "local_fraction": snapshot["local_fraction"],
        "deployments": deployments,
        "models": models,
        "local_first": snapshot["local_first"],
        "recent": recent,
    }


async def state(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    return JSONResponse(monitoring_state(services, await services.recent.figures_now()))
