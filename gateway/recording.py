"""Turn a finished call into its call-log row and the usage object returned to the client."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.storage.record import CallRecord
from routing.call import Call
from routing.cost import call_cost, usage_numbers


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who sent the call, as far as the log may keep it."""

    ip: str = ""
    user_id: str = ""
    session_id: str = ""
    api_key_name: str = ""
    endpoint: str = "/v1/chat/completions"
    referer: str = ""
    title: str = ""


def usage_with_cost(call: Call) -> dict[str, Any] | None:
    """The upstream usage plus OpenRouter's `cost` (USD)."""
    if call.usage is None:
        return None
    usage = dict(call.usage)
    usage["cost"] = round(cost_of(call), 10)
    return usage


def cost_of(call: Call) -> float:
    dep = call.deployment
    if dep is None:
        return 0.0
    seconds = time.perf_counter() - call.started
    return call_cost(dep.pricing, call.usage, seconds=seconds, per_second=dep.cost_per_second)


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def build_record(
    call: Call, payload: dict[str, Any], status: int, error: str, client: ClientInfo, log_content: bool
) -> CallRecord:
    """The api_logs row for a call; prompt and response text only when content logging is on."""
    prompt, completion, reasoning, cached, total = usage_numbers(call.usage)
    dep = call.deployment
    last = call.attempts[-1] if call.attempts else None
    metadata: dict[str, Any] = {}
    if client.referer:
        metadata["http_referer"] = client.referer[:200]
    if client.title:
        metadata["x_title"] = client.title[:200]
    if call.cancelled:
        metadata["cancelled"] = True
    return CallRecord(
        request_id=call.request_id,
        started_at=call.started_wall,
        model_id=call.model_id,
        provider=dep.provider if dep else (last.provider if last else ""),
        deployment=dep.name if dep else (last.deployment if last else ""),
        stream=call.stream,
        status_code=status,
        latency_ms=(time.perf_counter() - call.started) * 1000.0,
        error=error[:500],
        ttft_ms=call.ttft_ms,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        cached_tokens=cached,
        total_tokens=total,
        cost_usd=cost_of(call) if status == 200 or call.usage else 0.0,
        finish_reason=call.finish_reason,
        attempts=tuple(call.attempts),
        fallback_used=call.fallback_used,
        temperature=_number(payload.get("temperature"), float),
        top_p=_number(payload.get("top_p"), float),
        max_tokens=_number(payload.get("max_tokens") or payload.get("max_completion_tokens"), int),
        seed=_number(payload.get("seed"), int),
        user_id=str(payload.get("user") or client.user_id or "")[:200],
        session_id=str(payload.get("session_id") or client.session_id or "")[:200],
        api_key_name=client.api_key_name,
        client_ip=client.ip,
        endpoint=client.endpoint,
        prompt=orjson.dumps(payload.get("messages")).decode() if log_content else None,
        response="".join(call.text) if log_content else None,
        metadata=metadata,
    )
