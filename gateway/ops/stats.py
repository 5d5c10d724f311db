"""GET /stats (usage per model and provider, every key's budget) and GET /api/v1/generation?id= (one call's record)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.calllog.writer import CallLogUnavailable
from gateway.errors import APIError
from gateway.lifespan import Services
from routing.limits.spend_redis import SpendBackendError

log = logging.getLogger("gateway")


async def stats(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    params = request.query_params
    try:
        hours = float(params.get("hours", "24"))
    except ValueError:
        raise APIError(400, "`hours` must be a number", code="invalid_value", param="hours") from None
    if not 0 < hours <= 24 * 366:
        raise APIError(400, "`hours` must be between 0 and 8784", code="invalid_value", param="hours")
    model, provider = params.get("model") or None, params.get("provider") or None
    if not services.call_log.enabled:
        raise APIError(503, "the call log is disabled (USE_SQLITE_LOG=false and no DATABASE_URL)", code="no_call_log")
    try:
        rows = await services.call_log.stats(hours, model, provider)
    except CallLogUnavailable as exc:
        raise APIError(503, str(exc), code="call_log_unavailable") from None
    body: dict[str, Any] = {"period_hours": hours, "filters": {"model": model, "provider": provider}, "stats": rows}
    body["budgets"] = []
    budgets = list(services.books.budgets.values())
    if budgets and services.spend is not None:
        try:
            body["budgets"] = [state.row() for state in await services.spend.peek(budgets)]
        except SpendBackendError as exc:
            log.warning("stats: the budget ledger is unavailable (%s)", exc)
            body["budgets_error"] = str(exc)
    return JSONResponse(body)


async def generation(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    request_id = request.query_params.get("id", "").strip()
    if not request_id:
        raise APIError(400, "`id` is required, e.g. ?id=gen-...", code="invalid_value", param="id")
    try:
        record = await services.call_log.generation(request_id)
    except CallLogUnavailable as exc:
        raise APIError(503, str(exc), code="call_log_unavailable") from None
    if record is None:
        raise APIError(404, f"no generation with id {request_id!r}", code="generation_not_found", param="id")
    return JSONResponse({"data": record})
