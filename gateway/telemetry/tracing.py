"""Whether the gateway traces, decided from the OpenTelemetry SDK's own variables.

Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, unless
OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER is `none`. Only then is OpenTelemetry imported (otel.py, from
the `otel` extra); with tracing off the gateway never imports it and a call pays one `is None` test per hook.
The variables are read from the environment over `.env`, like every other setting; the SDK itself reads the
rest (OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES) from the process
environment.

With tracing off the client's `traceparent` is not forwarded: the gateway sends its upstreams no client headers,
and a hop that does not trace cannot vouch for a parent it did not record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.envvars import SettingsError
from routing.config.flags import parse_flag

if TYPE_CHECKING:
    from gateway.telemetry.otel import GenAITracer

_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"


def traces_endpoint(env: Mapping[str, str]) -> str:
    """Where spans go (OTLP/HTTP, `/v1/traces` under the base endpoint), or "" when tracing is off."""
    if _flag(env, "OTEL_SDK_DISABLED") or env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return ""
    explicit = env.get(_TRACES_ENDPOINT, "").strip()
    if explicit:
        return explicit
    base = env.get(_ENDPOINT, "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else ""


def start_tracing(env: Mapping[str, str]) -> GenAITracer | None:
    """The gateway's tracer when tracing is configured, else None; SettingsError when it cannot be."""
    endpoint = traces_endpoint(env)
    if not endpoint:
        return None
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").strip()
    if protocol not in ("", "http/protobuf"):
        raise SettingsError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: the gateway exports traces over OTLP/HTTP only. "
            "Fix: set it to http/protobuf (or unset it) and point the endpoint at the collector's HTTP port (4318)"
        )
    try:
        from gateway.telemetry.otel import GenAITracer
    except ImportError as exc:
        raise SettingsError(
            f"{_ENDPOINT} is set but OpenTelemetry is not installed ({exc.name} is missing). "
            f"Fix: pip install 'hybrid-gateway[otel]', or unset {_ENDPOINT} to run without traces"
        ) from None
    service = env.get("OTEL_SERVICE_NAME", "").strip() or "hybrid-gateway"
    return GenAITracer.start(endpoint, service, _delay_ms(env))


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip()
    if not value:
        return False
    try:
        return parse_flag(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: not a boolean. Fix: true or false") from None


def _delay_ms(env: Mapping[str, str]) -> float | None:
    """OTEL_BSP_SCHEDULE_DELAY (milliseconds between exports), read here too so `.env` can set it."""
    value = env.get("OTEL_BSP_SCHEDULE_DELAY", "").strip()
    if not value:
        return None
    try:
        delay = float(value)
    except ValueError:
        delay = -1.0
    if not delay > 0:
        raise SettingsError(f"OTEL_BSP_SCHEDULE_DELAY={value!r}: not a positive number. Fix: milliseconds, e.g. 5000")
    return delay
