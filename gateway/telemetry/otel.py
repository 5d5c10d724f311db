"""OpenTelemetry GenAI spans: one SERVER span per call, one CLIENT child span per upstream attempt.

Names and attributes follow the GenAI semantic conventions: `{gen_ai.operation.name} {gen_ai.request.model}`,
`gen_ai.provider.name`, `gen_ai.request.stream`, `gen_ai.response.model`, `gen_ai.usage.*`,
`gen_ai.response.time_to_first_chunk` (streams), `server.address` / `server.port` (attempts) and `error.type`
(a status code, `timeout`, `cancelled` or `_OTHER`).
The client's `traceparent` is the call span's parent; each attempt sends its own upstream. Spans are exported by
the SDK's BatchSpanProcessor from its own thread: the event loop only creates and ends them. Error text is left
out of attempt spans (upstream text may carry a secret); the call span's is the row's, with secrets masked.

Only gateway/telemetry/tracing.py imports this module, and only when tracing is configured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.telemetry.recording import ClientInfo
from routing.call import Call
from routing.config.schema import DeploymentConfig
from routing.cost import usage_numbers
from routing.tracing import UPSTREAM_HEADERS

log = logging.getLogger("gateway.tracing")

# gen_ai.operation.name by the endpoint a call came in on; anything else (Beacon's /inference, /ws) is a chat
OPERATIONS: Mapping[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
    "/v1/responses": "chat",
    "/v1/messages": "chat",
}
# our provider names where the conventions list a well-known value of their own; others are passed as written
PROVIDERS: Mapping[str, str] = {
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "watsonx": "ibm.watsonx.ai",
}
_PROPAGATOR = TraceContextTextMapPropagator()
_ERROR_TYPES = {"timeout": "timeout", "cancelled": "cancelled"}
_W3C = frozenset({b"traceparent", b"tracestate"})  # ASGI header names are lowercase


def provider_name(provider: str) -> str:
    return PROVIDERS.get(provider, provider)


def error_type(outcome: str, status: int | None) -> str:
    """`error.type` of a failed attempt: the upstream's status when it answered, else what happened."""
    if status is not None and status >= 400:
        return str(status)
    return _ERROR_TYPES.get(outcome, "_OTHER")


def _server(base_url: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    if not parts.hostname:
        return {}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname, "server.port": port}


def _usage(span: Span, usage: dict[str, Any] | None) -> None:
    if not usage:
        return
    prompt, completion, reasoning, cached, _ = usage_numbers(usage)
    span.set_attribute("gen_ai.usage.input_tokens", prompt)
    span.set_attribute("gen_ai.usage.output_tokens", completion)
    if cached:
        span.set_attribute("gen_ai.usage.cache_read.input_tokens", cached)
    if reasoning:
        span.set_attribute("gen_ai.usage.reasoning.output_tokens", reasoning)


class GenAITracer:
    """The gateway's tracer provider (never the process-global one) and the spans of every call."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("hybrid-gateway")

    @classmethod
    def start(cls, endpoint: str, service_name: str, schedule_delay_ms: float | None) -> GenAITracer:
        """Export to `endpoint` (OTLP/HTTP protobuf) in batches; the SDK reads its other OTEL_* variables itself."""
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        exporter = OTLPSpanExporter(endpoint=endpoint)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=schedule_delay_ms))
        return cls(provider)

    def trace(self, call: Call, asked: str, client: ClientInfo) -> CallSpans:
        return CallSpans(self.tracer, call, asked, client)

    async def close(self) -> None:
        """Export what is queued and stop: the flush blocks, so it runs off the loop."""
        await asyncio.to_thread(self.provider.shutdown)


class CallSpans:
    """One call's span and its attempts' (routing/tracing.py's CallTrace)."""

    __slots__ = ("_attempt", "_began", "_dep", "_served", "call", "context", "operation", "span", "tracer")

    def __init__(self, tracer: Tracer, call: Call, asked: str, client: ClientInfo) -> None:
        self.tracer, self.call = tracer, call
        self.operation = OPERATIONS.get(client.endpoint, "chat")
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in client.raw_headers if k in _W3C}
        parent = _PROPAGATOR.extract(carrier, Context()) if carrier else None
        self.span = tracer.start_span(
            f"{self.operation} {asked}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "gen_ai.operation.name": self.operation,
                "gen_ai.request.model": asked,
                "gen_ai.request.stream": call.stream,
            },
        )
        self.context = set_span_in_context(self.span, Context())
        self._attempt: Span | None = None
        self._dep: DeploymentConfig | None = None
        self._began = 0.0
        self._served: tuple[Span, DeploymentConfig, float, int] | None = None  # span, dep, began, ended (ns)

    def attempt_began(self, dep: DeploymentConfig) -> None:
        if self._attempt is not None:  # never recorded: whatever ended it did not come back through the call
            self._fail(self._attempt, "_OTHER")
        span = self.tracer.start_span(
            f"{self.operation} {dep.provider_model_id}",
            context=self.context,
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": self.operation,
                "gen_ai.provider.name": provider_name(dep.provider),
                "gen_ai.request.model": dep.provider_model_id,
                "gen_ai.request.stream": self.call.stream,
                "gateway.deployment": dep.name,
                **_server(dep.base_url),
            },
        )
        self._attempt, self._dep, self._began = span, dep, time.perf_counter()
        headers: dict[str, str] = {}
        _PROPAGATOR.inject(headers, set_span_in_context(span, Context()))
        UPSTREAM_HEADERS.set(headers)

    def attempt_ended(self, outcome: str, status: int | None) -> None:
        span, dep = self._attempt, self._dep
        if span is None or dep is None:
            return
        self._attempt = None
        if outcome == "ok":  # its usage is accounted after this: the span ends with the call, dated now
            self._served = (span, dep, self._began, time.time_ns())
            return
        self._fail(span, error_type(outcome, status))

    def finished(self, status: int, error: str) -> None:
        try:
            self._finish(status, error)
        except Exception as exc:  # a trace must never cost a call its row
            log.warning("call %s: its spans could not be ended (%s)", self.call.request_id, type(exc).__name__)

    def _finish(self, status: int, error: str) -> None:
        call, span = self.call, self.span
        if self._attempt is not None:  # the call ended while an attempt ran (cancelled, or a crash)
            self._fail(self._attempt, "cancelled")
            self._attempt = None
        if self._served is not None:
            self._end_served(*self._served)
        dep = call.deployment
        if dep is not None:
            span.set_attribute("gen_ai.provider.name", provider_name(dep.provider))
            span.set_attribute("gen_ai.response.model", call.model_id)
        elif call.attempts:
            span.set_attribute("gen_ai.provider.name", provider_name(call.attempts[-1].provider))
        _usage(span, call.usage)
        if call.stream and call.first_token_at is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", call.first_token_at - call.started)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            if status >= 500:  # a SERVER span: the client's own 4xx is not the gateway's error
                span.set_status(StatusCode.ERROR, error[:200] or None)
        span.end()

    def _end_served(self, span: Span, dep: DeploymentConfig, began: float, ended: int) -> None:
        call = self.call
        span.set_attribute("gen_ai.response.model", call.response_model or dep.provider_model_id)
        _usage(span, call.usage)
        if call.stream and call.first_token_at is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", max(0.0, call.first_token_at - began))
        span.end(end_time=ended)

    @staticmethod
    def _fail(span: Span, kind: str) -> None:
        span.set_attribute("error.type", kind)
        span.set_status(StatusCode.ERROR)
        span.end()
