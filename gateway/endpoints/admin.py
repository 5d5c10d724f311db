"""GET /routing: the weights in use per model and deployment (numbers and percentages, no secrets)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.services import Services


async def routing_table(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    snapshot = services.manager.snapshot()
    snapshot["description"] = (
        "Weights in use per model. A request's first deployment is drawn at random by weight; the others are "
        "fallbacks in weight order. Zero-weight deployments serve only as fallback."
    )
    return JSONResponse(snapshot)
