"""The call ledger: one object owns a call's bookkeeping, whatever surface it came in on.

A surface opens a ledger when it has parsed a request, admits the call to the client's own limits through it
(the per-client stream cap, CLIENT_RPM / CLIENT_TPM), and ends the call through it exactly once: `finish`
releases the stream slot, settles the client's token reservation, and leaves the row, the metrics, the event and
the log line. The price is computed once, after the serving attempt, so the answer and the row show one figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from adapters.redact import redact
from gateway.calllog.record import CallRecord
from gateway.calllog.writer import CallLog
from gateway.errors import APIError
from gateway.telemetry.events import EventHub, call_event
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.recording import (
    ClientInfo,
    build_record,
    cost_of,
    delivered_usage,
    reduced_record,
    secrets_of,
    usage_with_cost,
)
from routing.call import Call
from routing.config.schema import ModelConfig
from routing.errors import ClientRequestError, GatewayError
from routing.limits.admission import settled_tokens
from routing.limits.ratelimit import Denial, RateLimiter, Reservation, client_limit, estimate_tokens, prompt_messages
from routing.limits.spend import Budget, SpendLedger
from routing.limits.spending import CallSpend, settled_usd
from routing.limits.streams import Lease, StreamCap
from routing.stream import total_tokens
from routing.tracing import CallTrace

log = logging.getLogger("gateway.calls")


class Tracer(Protocol):
    """Opens a call's trace (gateway/telemetry/otel.py); the ledger holds one only when tracing is on."""

    def trace(self, call: Call, asked: str, client: ClientInfo) -> CallTrace: ...


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """CLIENT_RPM / CLIENT_TPM (0 = off), per API key name, else per client IP."""

    rpm: int = 0
    tpm: int = 0


class Bookkeeper:
    """The app-wide side of every ledger: where rows, metrics, events and client limits go."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        events: EventHub,
        call_log: CallLog,
        stream_cap: StreamCap,
        limiter: RateLimiter,
        client_limits: ClientLimits,
        log_content: bool,
        max_text: int = 0,
        budgets: Mapping[str, Budget] | None = None,
        spend: SpendLedger | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.metrics, self.events, self.call_log = metrics, events, call_log
        self.stream_cap, self.limiter, self.client_limits = stream_cap, limiter, client_limits
        self.log_content, self.max_text = log_content, max_text
        self.budgets, self.spend = (budgets or {}) if spend is not None else {}, spend
        self.tracer = tracer  # None unless OTEL_EXPORTER_OTLP_ENDPOINT is set (gateway/telemetry/tracing.py)

    def open(
        self,
        request_id: str,
        asked: str,
        model: ModelConfig | None,
        body: dict[str, Any],
        client: ClientInfo,
        stream: bool,
    ) -> CallLedger:
        """A ledger for one call of `asked` (a public id or alias; `model` is what it resolved to, if anything)."""
        # a made-up model name goes in the row (what was asked) but never in a metric label (unbounded)
        model_id = model.id if model else asked[:200]
        # what the call relays is held for the row up to CALL_LOG_MAX_TEXT per choice
        call = Call(request_id=request_id, model_id=model_id, stream=stream, text_cap=self.max_text)
        if self.tracer is not None:
            call.trace = self.tracer.trace(call, asked, client)
        return CallLedger(self, call, model, body, client)


class CallLedger:
    """One call's bookkeeping: admission to the client's limits, one price, and one finish."""

    def __init__(
        self, books: Bookkeeper, call: Call, model: ModelConfig | None, body: dict[str, Any], client: ClientInfo
    ) -> None:
        self.books, self.call, self.model, self.body, self.client = books, call, model, body, client
        self.secrets = secrets_of(model.deployments) if model else ()
        self.finished = False
        self.dispatched = False  # the executor was asked: a 429 from here on is the deployments'
        self._lease: Lease | None = None
        self._reservation: Reservation | None = None
        self._cost: float | None = None

    @property
    def holder(self) -> str:
        """Whose limits the call counts against: the API key's name, else the client IP."""
        return self.client.api_key_name or self.client.ip

    async def admit(self, payload: dict[str, Any]) -> None:
        """Take a stream slot (for a stream) and reserve the client's rpm/tpm; APIError 429 when either is spent.
        A key with a budget has each attempt reserve against it (routing/limits/spending.py)."""
        books = self.books
        if books.budgets:
            budget = books.budgets.get(self.client.api_key_name)
            if budget is not None and books.spend is not None:
                self.call.spend = CallSpend(budget, books.spend)
        # the stream cap first: a refused stream must not hold a rate-limit reservation
        if self.call.stream:
            self._lease = await books.stream_cap.acquire(self.holder)
            if self._lease is None:
                raise APIError(
                    429,
                    f"too many concurrent streams for this client (limit {books.stream_cap.limit})",
                    code="too_many_streams",
                )
        limits = books.client_limits
        if not (limits.rpm or limits.tpm):
            return
        limit = client_limit(self.holder or "anonymous", limits.rpm, limits.tpm)
        max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens")
        tokens = estimate_tokens(prompt_messages(payload), max_tokens if isinstance(max_tokens, int) else None)
        outcome = await books.limiter.reserve([limit], tokens)
        if isinstance(outcome, Denial):
            books.metrics.rate_limited("client", "")
            raise APIError(
                429,
                f"rate limit for this client reached ({outcome.exhausted} per minute); "
                f"retry in {outcome.retry_after:.1f}s",
                code="rate_limit_exceeded",
                headers=outcome.headers(),
            )
        self._reservation = outcome

    def cost(self) -> float:
        """USD for the call, priced once, after the serving attempt."""
        if self._cost is None:
            self._cost = cost_of(self.call)
        return self._cost

    def usage(self) -> dict[str, Any] | None:
        """The upstream's usage with OpenRouter's `cost`, or None when it reported none."""
        return usage_with_cost(self.call, self.cost())

    def headers(self, committed_stream: bool = False) -> dict[str, str]:
        """Who served and after how many attempts; a committed stream records its own attempt only when it ends."""
        call = self.call
        headers = {"x-gateway-attempts": str(len(call.attempts) + committed_stream)}
        dep = call.deployment
        if dep is not None:
            headers["x-gateway-deployment"] = dep.name
            headers["x-gateway-provider"] = dep.provider
        if call.completions:
            headers["x-gateway-completions"] = call.completions  # legacy completions: native or translated
        return headers

    def also_masks(self, models: Iterable[ModelConfig]) -> None:
        """A call that may fall back to other models (`models`) masks their deployments' credentials too."""
        for model in models:
            self.secrets += secrets_of(model.deployments)

    def mask(self, error: GatewayError) -> GatewayError:
        """The error with the model's known secrets masked (adapters mask what looks like a key, not every key)."""
        error.message = redact(error.message, self.secrets)
        error.args = (error.message,)
        if isinstance(error, ClientRequestError):  # its code, param and type are upstream text too
            error.code = redact(error.code, self.secrets)
            error.param, error.upstream_type = (
                redact(v, self.secrets) if v else v for v in (error.param, error.upstream_type)
            )
        return error

    async def fail(self, error: GatewayError) -> GatewayError:
        """End the call with `error` (masked) and return it, for the surface to render with who was tried."""
        self.mask(error)
        await self.finish(error.status, error.message)
        error.extra_headers.update(self.headers())
        return error

    async def crash(self, exc: BaseException) -> APIError:
        """A task boundary: the log gets the traceback, the row a short error, the client a 500 with the request id."""
        request_id = self.call.request_id
        log.error("call failed unexpectedly (request %s)", request_id, exc_info=exc)
        await asyncio.shield(self.finish(500, f"internal error ({type(exc).__name__})"))
        return APIError(500, f"internal error (request {request_id})", code="internal_error")

    @contextlib.asynccontextmanager
    async def on_record(self, before_routing: bool = False) -> AsyncIterator[None]:
        """Whatever the block raises ends the call on record, once: a GatewayError fails it (raised masked, its row
        written), the server's cancellation (shutdown) books a 503, anything else is a 500 with its traceback
        logged. Every surface wraps its admission and its upstream call in this."""
        try:
            yield
        except GatewayError as refused:
            raise await self.fail(refused) from None
        except asyncio.CancelledError:
            when = " before routing" if before_routing else ""
            await self.cancelled(f"call cancelled{when}: the gateway was shutting down")
            raise
        except Exception as exc:
            raise await self.crash(exc) from None

    async def cancelled(self, why: str) -> None:
        """The server cancelled the call (shutdown), not the client: still record it, as a 503."""
        self.call.cancelled = True
        await asyncio.shield(self.finish(503, why))

    async def finish(self, status: int, error: str = "") -> None:
        """End the call exactly once: release, settle, and leave the row, metrics, event and log line."""
        if self.finished:
            return
        self.finished = True
        books, call, model = self.books, self.call, self.model
        if self._lease is not None:
            books.stream_cap.release(self._lease)
        if status != 200 and call.usage is None and call.texts and self._cost is None:
            call.usage = delivered_usage(call, self.body.get("messages"))  # text was relayed: its tokens were spent
        record = self._record(status, error)
        if call.trace is not None:
            call.trace.finished(status, record.error)
        books.metrics.observe_call(record if model else replace(record, model_id=""), call.upstream_wait)
        if status == 429 and self.dispatched and model:
            books.metrics.rate_limited("deployment", model.id)
        if books.events.subscribers:
            books.events.publish(call_event(record), owner=record.api_key_name)
        if books.call_log.settings.sync or self._reservation is not None or call.spend is not None:
            # these awaits can suspend: a client leaving meanwhile must not cancel the row (or the settle)
            await asyncio.shield(self._persist(record, status))
        else:
            await books.call_log.write(record)  # a non-blocking enqueue: nothing here can be cancelled
        _log_line(record)

    def _record(self, status: int, error: str) -> CallRecord:
        """The call's row; a request the row cannot hold (it cannot be serialised) still leaves a reduced row,
        without its content, that says why."""
        books, call = self.books, self.call
        try:
            return build_record(
                call,
                self.body,
                status,
                error,
                self.client,
                books.log_content,
                self.cost(),
                self.secrets,
                books.max_text,
            )
        except Exception as exc:  # a record that cannot be built is still a call: it must leave a row
            log.error("call %s: its row could not be built (%s); writing a reduced row", call.request_id, exc)
            return reduced_record(call, status, error, self.client, self.secrets, type(exc).__name__)

    async def _persist(self, record: CallRecord, status: int) -> None:
        try:
            await self.books.call_log.write(record)
        finally:  # the reservation is given back on every path, or the client's budget leaks
            if self._reservation is not None:
                await self._settle(self._reservation, status)
            if self.call.spend is not None:
                await self._settle_spend(self.call.spend, status)

    async def _settle(self, reservation: Reservation, status: int) -> None:
        """The deployments' rule (`settled_tokens`): nothing delivered releases, reported usage settles, no usage
        lets the reservation stand."""
        call = self.call
        reported = None if (call.usage or {}).get("estimated") else total_tokens(call)  # an estimate settles nothing
        tokens = settled_tokens(reported, status == 200 or call.first_token_at is not None)
        limiter = self.books.limiter
        try:
            if tokens == 0:
                await limiter.release(reservation)
            elif tokens is not None:
                await limiter.settle(reservation, tokens)
        except Exception as exc:  # the limiter's store being down must not fail a finished call
            log.warning("client rate limit settle failed: %s", type(exc).__name__)

    async def _settle_spend(self, spend: CallSpend, status: int) -> None:
        """The budget's hold settles to the row's cost (spending.settled_usd)."""
        delivered = status == 200 or self.call.first_token_at is not None
        try:
            await spend.settle(settled_usd(self.call.deployment, self.call.usage, self.cost(), delivered))
        except Exception as exc:  # the ledger's store being down must not fail a finished call
            log.warning("spend budget settle failed: %s", type(exc).__name__)


def _log_line(record: CallRecord) -> None:
    """The one JSON line per call on the `gateway.calls` logger."""
    level = logging.WARNING if record.status_code >= 500 else logging.INFO
    if not log.isEnabledFor(level):
        return
    log.log(
        level,
        "call",
        extra={
            "request_id": record.request_id,
            "model": record.model_id,
            "deployment": record.deployment,
            "provider": record.provider,
            "endpoint": record.endpoint,
            "status": record.status_code,
            "stream": record.stream,
            "latency_ms": round(record.latency_ms, 2),
            "ttft_ms": None if record.ttft_ms is None else round(record.ttft_ms, 2),
            "attempts": len(record.attempts),
            "tokens": record.total_tokens,
            "cost_usd": record.cost_usd,
            "error": record.error or None,
        },
    )
