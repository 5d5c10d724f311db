"""GET /api/v1/key: the calling key's own budget and spend, in OpenRouter's shape ("get current API key").

The gateway tracks spend per budget period (routing/limits/spend.py): `usage` and the field of the budget's period
(`usage_daily` or `usage_monthly`) carry it, the other periods' fields say 0 (not tracked); `limit_remaining` is the
limit less the settled spend (calls in flight hold more until they end). A key without a budget reports `limit`
null and no spend (the call log has it: `/stats`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.errors import APIError
from gateway.lifespan import Services
from routing.limits.spend import SpendState, iso, to_usd
from routing.limits.spend_redis import SpendBackendError

_RESET = {"day": "daily", "month": "monthly"}


def key_data(label: str, state: SpendState | None, rpm: int) -> dict[str, Any]:
    """OpenRouter's `data` object for one key: its budget's state, or no limit."""
    usage = to_usd(state.spent) if state is not None else 0.0
    period = state.budget.period if state is not None else None
    budget = None
    if state is not None:
        budget = {
            "budget_id": None,
            "guardrail_id": None,
            "include_byok": False,
            "limit_usd": state.budget.limit_usd,
            "remaining_usd": to_usd(state.remaining),
            "reset_interval": _RESET[state.budget.period],
            "resets_at": iso(state.resets_at),
            "scope": "api_key",
            "spend_usd": usage,
        }
    return {
        "label": label,
        "limit": state.budget.limit_usd if state is not None else None,
        "limit_remaining": to_usd(state.remaining) if state is not None else None,
        "limit_reset": _RESET[period] if period is not None else None,
        "usage": usage,
        "usage_daily": usage if period == "day" else 0.0,
        "usage_weekly": 0.0,
        "usage_monthly": usage if period == "month" else 0.0,
        "byok_usage": 0.0,
        "byok_usage_daily": 0.0,
        "byok_usage_weekly": 0.0,
        "byok_usage_monthly": 0.0,
        "include_byok_in_limit": False,
        "is_free_tier": False,
        "is_management_key": False,
        "is_provisioning_key": False,
        "rate_limit": {"requests": rpm or -1, "interval": "1m", "note": "CLIENT_RPM per key; -1: none"},
        "budgets": [budget] if budget is not None else [],
        "effective_budget": budget,
        "allowed_data_regions": [],
        "free_model_daily_requests": {"limit": 0, "remaining": 0, "used": 0},
        "creator_user_id": None,
        "organization_id": None,
        "workspace_id": None,
        "expires_at": None,
    }


async def current_key(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    name = request.scope.get("state", {}).get("api_key_name", "")
    budget = services.books.budgets.get(name)
    state = None
    if budget is not None and services.spend is not None:
        try:
            (state,) = await services.spend.peek([budget])
        except SpendBackendError as exc:
            raise APIError(503, f"the budget ledger is unavailable ({exc})", code="budget_ledger_unavailable") from None
    return JSONResponse({"data": key_data(name or "anonymous", state, services.settings.client_rpm)})
