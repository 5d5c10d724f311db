"""Turn a finished call into its call-log row and the usage object returned to the client."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from adapters.redact import redact
from adapters.tokens import prompt_text
from gateway.calllog.record import CallRecord
from routing.call import Call
from routing.config.schema import DeploymentConfig
from routing.cost import call_cost, cost_details, usage_numbers
from routing.transcript import head_and_tail

# Header names whose values are credentials (Azure's `api-key`, Anthropic's `x-api-key`, custom auth headers).
_AUTH_HEADER = ("key", "auth", "token", "secret")


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
    # the request's raw headers, by reference: only a tracer reads them (the client's traceparent), and only when on
    raw_headers: Sequence[tuple[bytes, bytes]] = field(default=(), repr=False, compare=False)


def usage_with_cost(call: Call, cost: float) -> dict[str, Any] | None:
    """The upstream usage plus OpenRouter's `cost` (USD): the figure `cost_of` gave, which the log row keeps too."""
    if call.usage is None:
        return None
    usage = dict(call.usage)
    usage["cost"] = cost
    dep = call.deployment
    if dep is not None:
        usage["cost_details"] = cost_details(dep.pricing, call.usage, cost)
    return usage


def delivered_usage(call: Call, messages: Any) -> dict[str, Any]:
    """Estimated usage for a call that relayed text but got no usage from its upstream (the client left mid-stream,
    the stream broke): the completion tokens of what was relayed (adapters.tokens' rule over the call's transcript)
    and the prompt at 4 characters a token. `estimated: true` marks it, in the row's metadata too."""
    prompt = math.ceil(len(prompt_text(messages)) / 4)
    completion = call.estimate_text_tokens()
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "estimated": True,
    }


def serving_seconds(call: Call) -> float:
    """How long the deployment that served took: its own attempt, not the failed attempts before it."""
    dep = call.deployment
    if dep is None:
        return 0.0
    for attempt in reversed(call.attempts):
        if attempt.deployment == dep.name and attempt.outcome != "skipped":
            return attempt.duration_ms / 1000.0
    # a committed stream records its attempt when it ends; priced before that, it has run since its first token
    return time.perf_counter() - (call.first_token_at or call.started)


def cost_of(call: Call) -> float:
    """USD for a call, rounded as every response and the log show it; price it once per call and pass it on."""
    dep = call.deployment
    if dep is None:
        return 0.0
    cost = call_cost(dep.pricing, call.usage, seconds=serving_seconds(call), per_second=dep.cost_per_second)
    return round(cost, 10)


def secrets_of(deployments: Iterable[DeploymentConfig]) -> tuple[str, ...]:
    """The credentials a model's deployments send upstream, to mask wherever upstream text is repeated."""
    found: list[str] = []
    for dep in deployments:
        if dep.api_key:
            found.append(dep.api_key)
        found.extend(v for k, v in dep.headers if any(word in k.lower() for word in _AUTH_HEADER))
    return tuple(found)


def scrub(call: Call, secrets: tuple[str, ...]) -> None:
    """Mask the known secrets in the call's attempt errors (the executor keeps upstream text as it came)."""
    call.attempts[:] = [replace(a, error=redact(a.error, secrets)) if a.error else a for a in call.attempts]


def responses_of(call: Call) -> str:
    """The row's response: the text of the one choice, or of each choice (n > 1) as a JSON list in index order."""
    if len(call.texts) <= 1:
        return call.text(next(iter(call.texts), 0))
    return orjson.dumps([call.text(i) for i in range(max(call.texts) + 1)]).decode()


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def build_record(
    call: Call,
    payload: dict[str, Any],
    status: int,
    error: str,
    client: ClientInfo,
    log_content: bool,
    cost: float,
    secrets: tuple[str, ...] = (),
    max_text: int = 0,
) -> CallRecord:
    """The api_logs row for a call; prompt and response text only when content logging is on.

    `cost` is the figure the client was shown (cost_of, priced once); `secrets` are masked in error text. Prompt
    and response longer than `max_text` characters (0: no cap) keep their head and tail; the metadata records
    their full length and that they were cut.
    """
    scrub(call, secrets)
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
    if call.usage and call.usage.get("estimated") is True:
        metadata["usage_estimated"] = True
    prompt_text = response_text = None
    if log_content:
        prompt_text = orjson.dumps(payload.get("messages", payload.get("prompt"))).decode()
        if max_text and len(prompt_text) > max_text:
            metadata["prompt_chars"], metadata["prompt_cut"] = len(prompt_text), True
            prompt_text = head_and_tail(prompt_text, max_text)
        response_text = responses_of(call)
        if call.text_cut:
            metadata["response_chars"], metadata["response_cut"] = call.text_chars, True
    return CallRecord(
        request_id=call.request_id,
        started_at=call.started_wall,
        model_id=call.model_id,
        provider=dep.provider if dep else (last.provider if last else ""),
        deployment=dep.name if dep else (last.deployment if last else ""),
        stream=call.stream,
        status_code=status,
        latency_ms=(time.perf_counter() - call.started) * 1000.0,
        error=redact(error, secrets)[:500],
        ttft_ms=call.ttft_ms,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        cached_tokens=cached,
        total_tokens=total,
        cost_usd=cost if status == 200 or call.usage else 0.0,
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
        prompt=prompt_text,
        response=response_text,
        metadata=metadata,
        routing_reason=call.routing_reason,
    )


def reduced_record(
    call: Call, status: int, error: str, client: ClientInfo, secrets: tuple[str, ...], why: str
) -> CallRecord:
    """The row of a call whose full row cannot be built: no content, `metadata.reduced` says why; if even the
    usage or attempts cannot be read, the bare facts (who, when, which status), so the call is still on record."""
    try:
        cost = cost_of(call)
        reduced = build_record(call, {}, status, error, client, False, cost, secrets)
        return replace(reduced, metadata={**reduced.metadata, "reduced": why})
    except Exception:  # the upstream's usage or an attempt is what cannot be read: keep the bare facts
        return CallRecord(
            request_id=call.request_id,
            started_at=call.started_wall,
            model_id=call.model_id,
            provider=call.deployment.provider if call.deployment else "",
            deployment=call.deployment.name if call.deployment else "",
            stream=call.stream,
            status_code=status,
            latency_ms=(time.perf_counter() - call.started) * 1000.0,
            error=redact(error, secrets)[:500],
            api_key_name=client.api_key_name,
            client_ip=client.ip,
            endpoint=client.endpoint,
            metadata={"reduced": why, "bare": True},
        )
