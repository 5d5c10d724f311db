"""Project Beacon's inference call: one prompt routed by region, cost and provider preference, answered in
Beacon's shape (success, response, error_code, provider_used, inference_time, cost_estimate, metadata)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope

from gateway.disconnect import ClientGone, unless_gone
from gateway.errors import APIError, error_headers
from gateway.lifespan import Services
from gateway.requests import unroutable
from gateway.telemetry.ledger import CallLedger
from gateway.telemetry.recording import ClientInfo, scrub
from routing.call import Call
from routing.config.schema import DeploymentConfig, ModelConfig
from routing.errors import Category, GatewayError
from routing.manager import ModelRoute
from routing.selection import Preferences

# Beacon's error_code for each category of the one error tree; the HTTP status is the error's own (Beacon's
# runner decodes the body whatever the status).
BEACON_CODES: Mapping[Category, str] = {
    "invalid_request": "INVALID_REQUEST",
    "too_large": "INVALID_REQUEST",
    "billing": "BUDGET_EXCEEDED",
    "authentication": "UNAUTHORIZED",
    "permission": "FORBIDDEN",
    "not_found": "NO_PROVIDER_AVAILABLE",
    "rate_limited": "NO_PROVIDER_AVAILABLE",
    "unavailable": "NO_PROVIDER_AVAILABLE",
    "timeout": "TIMEOUT",
    "upstream": "PROVIDER_ERROR",
    "internal": "PROVIDER_ERROR",
}


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """Seed 003's request, checked."""

    model: str
    prompt: str
    temperature: float
    max_tokens: int
    prefs: Preferences
    trace_id: str


def parse_inference(body: Any, trace_header: str = "") -> InferenceRequest:
    if not isinstance(body, dict):
        raise _invalid("body must be a JSON object")
    model, prompt = body.get("model"), body.get("prompt")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("`model` is required and must be a string")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _invalid("`prompt` is required and must be a non-empty string")
    temperature = body.get("temperature", 0.1)
    max_tokens = body.get("max_tokens", 512)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise _invalid("`temperature` must be a number between 0 and 2")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _invalid("`max_tokens` must be a positive integer")
    cost_priority = body.get("cost_priority", True)
    if not isinstance(cost_priority, bool):
        raise _invalid("`cost_priority` must be true or false")
    texts = {k: body.get(k) or "" for k in ("region_preference", "provider_preference", "trace_id")}
    if not all(isinstance(v, str) for v in texts.values()):
        raise _invalid("region_preference, provider_preference and trace_id must be strings")
    return InferenceRequest(
        model=model,
        prompt=prompt,
        temperature=float(temperature),
        max_tokens=max_tokens,
        prefs=Preferences(
            region=texts["region_preference"],
            strict_region=body.get("strict_region") is True,
            provider=texts["provider_preference"],
            cost_priority=cost_priority,
        ),
        trace_id=texts["trace_id"] or trace_header,
    )


def _invalid(message: str) -> APIError:
    return APIError(400, message, code="invalid_request")


def failure(
    error: GatewayError,
    request_id: str,
    trace_id: str,
    call: Call | None = None,
    model: ModelConfig | None = None,
) -> dict[str, Any]:
    """Beacon's rendering of any error of the tree; with the call and its model, it names the last deployment
    that was tried."""
    metadata: dict[str, Any] = {"attempts": [a.as_dict() for a in call.attempts] if call else []}
    dep = last_attempted(call, model) if call and model else None
    if dep is not None and model is not None:
        metadata = {
            "provider_type": dep.kind,
            "provider": dep.provider,
            "region": dep.region,
            "model": model.id,
            "deployment": dep.name,
            **metadata,
        }
    return {
        "success": False,
        "response": None,
        "error": error.message,
        "error_code": BEACON_CODES[error.category],
        "provider_used": "",
        "inference_time": round(time.perf_counter() - call.started, 4) if call else 0.0,
        "cost_estimate": 0.0,
        "request_id": request_id,
        "trace_id": trace_id or None,
        "metadata": metadata,
    }


def last_attempted(call: Call, model: ModelConfig) -> DeploymentConfig | None:
    """The deployment of the call's last real attempt (skips sent no request), if any."""
    tried = next((a.deployment for a in reversed(call.attempts) if a.outcome != "skipped"), None)
    return next((d for d in model.deployments if d.name == tried), None) if tried else None


def success(call: Call, text: str, model: str, trace_id: str, cost: float) -> dict[str, Any]:
    dep = call.deployment
    assert dep is not None
    return {
        "success": True,
        "response": text,
        "error": None,
        "error_code": None,
        "provider_used": dep.name,
        "inference_time": round(time.perf_counter() - call.started, 4),
        "cost_estimate": cost,
        "request_id": call.request_id,
        "trace_id": trace_id or None,
        "metadata": {
            "provider_type": dep.kind,
            "provider": dep.provider,
            "region": dep.region,
            "model": model,
            "deployment": dep.name,
            "attempts": [a.as_dict() for a in call.attempts],
        },
    }


OnChunk = Callable[[str], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Answer:
    """Beacon's answer to one call: the HTTP status, the body, and the headers an error asks for (Retry-After)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


async def run_inference(
    services: Services,
    req: InferenceRequest,
    request_id: str,
    client: ClientInfo,
    on_chunk: OnChunk | None = None,
    receive: Receive | None = None,
    scope: Scope | None = None,
) -> Answer:
    """Route, execute (streaming to on_chunk when given), book and answer in Beacon's shape; one row per call.
    With the HTTP request's `receive`, a client that disconnects cancels the call (499)."""
    route = services.manager.route(req.model)
    model = route.model if route else services.config.resolve(req.model)
    payload: dict[str, Any] = {
        "model": req.model,
        "messages": [{"role": "user", "content": req.prompt}],
        "temperature": req.temperature,
        "max_tokens": min(req.max_tokens, model.max_output_length) if model else req.max_tokens,
    }
    ledger = services.books.open(
        request_id, asked=req.model, model=model, body=payload, client=client, stream=on_chunk is not None
    )
    call = ledger.call
    try:
        if route is None:
            raise unroutable(model, req.model)
        await ledger.admit(payload)
        ledger.dispatched = True
        work = _execute(services, route, payload, ledger, req, on_chunk)
        text = await (work if receive is None else unless_gone(receive, work, scope))
        scrub(call, ledger.secrets)
        body = success(call, text, route.model.id, req.trace_id, ledger.cost())
    except GatewayError as exc:
        error = await ledger.fail(exc)
        scrub(call, ledger.secrets)
        return Answer(error.status, failure(error, request_id, req.trace_id, call, model), error_headers(error))
    except ClientGone:  # nobody reads this answer; the row says what was spent
        call.cancelled = True
        await ledger.fail(APIError(499, "client disconnected before the answer", code="client_disconnected"))
        return Answer(499, {}, {})
    except asyncio.CancelledError:
        await ledger.cancelled("call cancelled")
        raise
    except Exception as exc:  # a task boundary: Beacon's JSON for the client, the traceback for the log
        error = await ledger.crash(exc)
        return Answer(500, failure(error, request_id, req.trace_id, call, model), {})
    await ledger.finish(200)
    return Answer(200, body, ledger.headers())


async def _execute(
    services: Services,
    route: ModelRoute,
    payload: dict[str, Any],
    ledger: CallLedger,
    req: InferenceRequest,
    on_chunk: OnChunk | None,
) -> str:
    """The answer's text, whole (the call's own transcript is bounded for the row)."""
    if on_chunk is None:
        result = await services.executor.complete(route, payload, ledger.call, req.prefs)
        choices = result.get("choices") or [{}]
        content = (choices[0].get("message") or {}).get("content")
        return content if isinstance(content, str) else ""
    pieces: list[str] = []
    upstream = await services.executor.stream(route, payload, ledger.call, req.prefs)
    try:
        async for chunk in upstream.chunks():
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    pieces.append(piece)
                    await on_chunk(piece)
    finally:
        await upstream.aclose()
    return "".join(pieces)
