"""Project Beacon's inference call: one prompt routed by region, cost and provider preference, answered in
Beacon's shape (success, response, error_code, provider_used, inference_time, cost_estimate, metadata)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from adapters.redact import redact
from gateway.lifespan import Services
from gateway.telemetry.events import call_event
from gateway.telemetry.recording import ClientInfo, build_record, cost_of, scrub, secrets_of
from routing.call import Call
from routing.config.schema import DeploymentConfig, ModelConfig
from routing.errors import AllAttemptsFailed, NoDeploymentAvailable, RateLimited, RoutingError
from routing.executor import Preferences
from routing.manager import ModelRoute

log = logging.getLogger("gateway.calls")

# error_code -> HTTP status; the runner in seed 003 decodes the body whatever the status.
STATUS = {"INVALID_REQUEST": 400, "NO_PROVIDER_AVAILABLE": 503, "PROVIDER_ERROR": 502, "TIMEOUT": 504}


class BeaconError(Exception):
    """A request Beacon's API refuses before routing."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status or STATUS[code]


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
        raise BeaconError("INVALID_REQUEST", "body must be a JSON object")
    model, prompt = body.get("model"), body.get("prompt")
    if not isinstance(model, str) or not model.strip():
        raise BeaconError("INVALID_REQUEST", "`model` is required and must be a string")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BeaconError("INVALID_REQUEST", "`prompt` is required and must be a non-empty string")
    temperature = body.get("temperature", 0.1)
    max_tokens = body.get("max_tokens", 512)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise BeaconError("INVALID_REQUEST", "`temperature` must be a number between 0 and 2")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BeaconError("INVALID_REQUEST", "`max_tokens` must be a positive integer")
    cost_priority = body.get("cost_priority", True)
    if not isinstance(cost_priority, bool):
        raise BeaconError("INVALID_REQUEST", "`cost_priority` must be true or false")
    texts = {k: body.get(k) or "" for k in ("region_preference", "provider_preference", "trace_id")}
    if not all(isinstance(v, str) for v in texts.values()):
        raise BeaconError("INVALID_REQUEST", "region_preference, provider_preference and trace_id must be strings")
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


def error_code_of(exc: RoutingError) -> str:
    if isinstance(exc, NoDeploymentAvailable | RateLimited):
        return "NO_PROVIDER_AVAILABLE"
    if isinstance(exc, AllAttemptsFailed) and exc.status == 504:
        return "TIMEOUT"
    return "PROVIDER_ERROR"


def failure(
    code: str,
    message: str,
    request_id: str,
    trace_id: str,
    call: Call | None = None,
    model: ModelConfig | None = None,
) -> dict[str, Any]:
    """Beacon's failure body; with the call and its model, it names the last deployment that was tried."""
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
        "error": message,
        "error_code": code,
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


async def run_inference(
    services: Services, req: InferenceRequest, request_id: str, client: ClientInfo, on_chunk: OnChunk | None = None
) -> tuple[int, dict[str, Any]]:
    """Route, execute (streaming to on_chunk when given), log and answer in Beacon's shape; one row per call."""
    route = services.manager.route(req.model)
    model = route.model if route else services.config.resolve(req.model)
    payload: dict[str, Any] = {
        "model": req.model,
        "messages": [{"role": "user", "content": req.prompt}],
        "temperature": req.temperature,
        "max_tokens": min(req.max_tokens, model.max_output_length) if model else req.max_tokens,
    }
    # a made-up model name goes in the row (what was asked) but never in a metric label (unbounded)
    call = Call(request_id=request_id, model_id=model.id if model else req.model[:200], stream=on_chunk is not None)
    secrets = secrets_of(model.deployments) if model else ()
    status, error, cost = 200, "", 0.0
    try:
        if route is None:
            # a configured model with every deployment disabled exists: 503, like a fleet with none free
            status = STATUS["NO_PROVIDER_AVAILABLE"] if model else 404
            error = _unavailable(model) if model else f"no provider serves model {req.model!r}"
            body = failure("NO_PROVIDER_AVAILABLE", error, request_id, req.trace_id)
        else:
            await _execute(services, route, payload, call, req, on_chunk)
            scrub(call, secrets)
            cost = cost_of(call)
            body = success(call, "".join(call.text), route.model.id, req.trace_id, cost)
    except RoutingError as exc:
        code = error_code_of(exc)
        scrub(call, secrets)
        status, error = (429 if isinstance(exc, RateLimited) else STATUS[code]), redact(exc.message, secrets)
        body = failure(code, error, request_id, req.trace_id, call, model)
    except asyncio.CancelledError:
        call.cancelled = True
        await asyncio.shield(_log(services, call, payload, 503, "call cancelled", client, cost, secrets, model))
        raise
    except Exception as exc:  # a task boundary: Beacon's JSON for the client, the traceback for the log
        log.error("inference failed unexpectedly (request %s)", request_id, exc_info=exc)
        status, error = 500, f"internal error ({type(exc).__name__})"
        message = f"internal error (request {request_id})"
        body = failure("PROVIDER_ERROR", message, request_id, req.trace_id, call, model)
    await _log(services, call, payload, status, error, client, cost, secrets, model)
    return status, body


async def _execute(
    services: Services,
    route: ModelRoute,
    payload: dict[str, Any],
    call: Call,
    req: InferenceRequest,
    on_chunk: OnChunk | None,
) -> None:
    if on_chunk is None:
        await services.executor.complete(route, payload, call, req.prefs)
        return
    upstream = await services.executor.stream(route, payload, call, req.prefs)
    try:
        async for chunk in upstream.chunks():
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    await on_chunk(piece)
    finally:
        await upstream.aclose()


def _unavailable(model: ModelConfig) -> str:
    why = "; ".join(f"{d.name}: {d.disabled_reason or 'disabled'}" for d in model.deployments) or "none configured"
    return f"no deployment of model {model.id} is available: {why}"


async def _log(
    services: Services,
    call: Call,
    payload: dict[str, Any],
    status: int,
    error: str,
    client: ClientInfo,
    cost: float,
    secrets: tuple[str, ...],
    model: ModelConfig | None,
) -> None:
    record = build_record(call, payload, status, error, client, services.settings.log_content, cost, secrets)
    services.metrics.observe_call(record if model else replace(record, model_id=""), call.upstream_wait)
    await services.call_log.write(record)
    if services.events.subscribers:
        services.events.publish(call_event(record))
