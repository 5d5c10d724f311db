"""GET /routing: the weights in use; POST /routing: soft offload (change local_fraction) or reload the config."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.errors import APIError
from gateway.lifespan import Services
from gateway.ops.reload import reload_config
from gateway.requests import read_json


async def routing_table(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    snapshot = services.routing_snapshot()
    snapshot["description"] = (
        "Weights in use per model. A request's first deployment is drawn at random by weight; the others are "
        "fallbacks in weight order. Zero-weight deployments serve only as fallback. For local_first models the "
        "weights are the baseline (all local): each call's plan follows load, shown per local deployment in `load` "
        "and per model in `spilling`; the spill budget is under `local_first`."
    )
    return JSONResponse(snapshot)


async def change_routing(request: Request) -> JSONResponse:
    """`{"local_fraction": 0.3}` shifts traffic between local and remote deployments now; `{"reload": true}`
    re-reads models.yaml and routing.yaml. Calls already running keep the route they started with."""
    services: Services = request.app.state.services
    body = await read_json(request, 64 * 1024)
    unknown = set(body) - {"local_fraction", "reload"}
    if unknown or not body:
        raise APIError(400, 'send {"local_fraction": 0..1} and/or {"reload": true}', code="invalid_value")
    if body.get("reload"):
        error = reload_config(services)
        if error:
            raise APIError(400, f"reload refused, the running config is unchanged: {error}", code="invalid_config")
    if "local_fraction" in body:
        value = body["local_fraction"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise APIError(
                400, "`local_fraction` must be a number between 0 and 1", code="invalid_value", param="local_fraction"
            )
        services.manager.set_local_fraction(float(value))
    return JSONResponse(services.routing_snapshot())
