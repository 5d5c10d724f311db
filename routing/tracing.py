"""What routing tells a call's trace, when tracing is on: the spans themselves are gateway/telemetry/otel.py's.

A call carries a `CallTrace` only when the gateway traces (OTEL_EXPORTER_OTLP_ENDPOINT); otherwise `call.trace`
is None and the executor's two hooks are one attribute test each. The attempt's `traceparent` reaches the
transport through `UPSTREAM_HEADERS`, set by `attempt_began` in the task that then sends the attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from routing.config.schema import DeploymentConfig

# headers the current attempt adds to its upstream request (W3C trace context); None when the call is not traced
UPSTREAM_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar("upstream_trace_headers", default=None)


class CallTrace(Protocol):
    """One call's span and its attempts' child spans."""

    def attempt_began(self, dep: DeploymentConfig) -> None:
        """An attempt is about to be sent to `dep`: open its span and set UPSTREAM_HEADERS to its context."""

    def attempt_ended(self, outcome: str, status: int | None) -> None:
        """The attempt begun last is over, as the call records it (routing/call.py's Attempt outcome and status)."""

    def finished(self, status: int, error: str) -> None:
        """The call ended with `status` (its row's): close its span and any attempt still open."""
