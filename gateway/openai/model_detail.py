"""`GET /v1/models/{id}`: one model in the list's shape (an alias resolves to its model), or OpenAI's 404.
`/api/v1/models/{id}` answers the same in OpenRouter's shapes. Ids may contain `/`, so the route takes a path."""

from __future__ import annotations

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from gateway.errors import APIError
from gateway.lifespan import Services
from gateway.openai.models import model_entry
from gateway.openai.openrouter import openrouter_model, speaks_openrouter
from routing.manager import ModelRoute


def _served(request: Request) -> ModelRoute:
    """The served model the path names; 404 (as OpenAI words it) for one unknown or that nothing can serve now,
    as the list would not show it either."""
    services: Services = request.app.state.services
    name = request.path_params["model_id"]
    route = services.manager.route(name)
    if route is None:
        raise APIError(
            404, f"The model {name[:200]!r} does not exist; see GET /v1/models", code="model_not_found", param="model"
        )
    return route


def _to_list(request: Request) -> Response | None:
    """`/v1/models/` (no id) is the list, redirected as Starlette redirects any path that differs by its slash."""
    if request.path_params["model_id"]:
        return None
    return RedirectResponse(URL(scope={**request.scope, "path": request.url.path.rstrip("/")}))


async def retrieve_model(request: Request) -> Response:
    services: Services = request.app.state.services
    return _to_list(request) or JSONResponse(model_entry(_served(request), int(services.started_at)))


@speaks_openrouter
async def openrouter_retrieve_model(request: Request) -> Response:
    services: Services = request.app.state.services
    return _to_list(request) or JSONResponse(openrouter_model(_served(request), int(services.started_at)))
