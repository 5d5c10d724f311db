"""Project Beacon's inference call: one prompt routed by region, cost and provider preference, answered in
Beacon's shape (success, response, error_code, provider_used, inference_time, cost_estimate, metadata)."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from gateway.events import call_event
from gateway.recording import ClientInfo, build_record, cost_of
from gateway.services import Services
from routing.call import Call
from routing.errors import AllAttemptsFailed, NoDeploymentAvailable, RateLimited, RoutingError
from routing.executor import Preferences

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


def failure(code: str, message: str, request_id: str, trace_id: str, call: Call | None = None) -> dict[str, Any]:
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
        "metadata": {"attempts": [a.as_dict() for a in call.attempts] if call else []},
    }


def success(call: Call, text: str, model: str, trace_id: str) -> dict[str, Any]:
    dep = call.deployment
    assert dep is not None
    return {
        "success": True,
        "response": text,
        "error": None,
        "error_code": None,
        "provider_used": dep.name,
        "inference_time": round(time.perf_counter() - call.started, 4),
        "cost_estimate": round(cost_of(call), 8),
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
    """Route, execute (streaming to on_chunk when given), log and answer in Beacon's shape."""
    route = services.manager.route(req.model)
    if route is None:
        return 404, failure(
            "NO_PROVIDER_AVAILABLE", f"no provider serves model {req.model!r}", request_id, req.trace_id
        )
    payload = {
        "model": req.model,
        "messages": [{"role": "user", "content": req.prompt}],
        "temperature": req.temperature,
        "max_tokens": min(req.max_tokens, route.model.max_output_length),
    }
    call = Call(request_id=request_id, model_id=route.model.id, stream=on_chunk is not None)
    status, error = 200, ""
    try:
        if on_chunk is None:
            await services.executor.complete(route, payload, call, req.prefs)
        else:
            upstream = await services.executor.stream(route, payload, call, req.prefs)
            try:
                async for chunk in upstream.chunks():
                    for choice in chunk.get("choices") or ():
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            await on_chunk(piece)
            finally:
                await upstream.aclose()
        body = success(call, "".join(call.text), route.model.id, req.trace_id)
    except RoutingError as exc:
        code = error_code_of(exc)
        status, error = (429 if isinstance(exc, RateLimited) else STATUS[code]), exc.message
        body = failure(code, exc.message, request_id, req.trace_id, call)
    record = build_record(call, payload, status, error, client, services.settings.log_content)
    services.metrics.observe_call(record, call.upstream_wait)
    await services.call_log.write(record)
    if services.events.subscribers:
        services.events.publish(call_event(record))
    return status, body
