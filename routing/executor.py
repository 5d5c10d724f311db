"""The executor: the one place that does upstream I/O, retries and fallback, bounded by attempts and a deadline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from adapters.base import Adapter
from routing.answers import Answers
from routing.call import Call
from routing.config.schema import DeploymentConfig
from routing.errors import (
    AllAttemptsFailed,
    ClientRequestError,
    NoDeploymentAvailable,
    RoutingError,
    UpstreamError,
)
from routing.exhausted import blocked, summary
from routing.legacy import completions_mode
from routing.limits.admission import Admission, Guards, Skip
from routing.limits.breaker import BreakerBoard
from routing.limits.ratelimit import InProcessRateLimiter, estimate_tokens, prompt_messages
from routing.load_board import LoadBoard
from routing.local_first import Plan
from routing.manager import ModelRoute
from routing.planning import plan
from routing.request_routing import ProviderRouting
from routing.retry import RetryPolicy, classify_failure
from routing.selection import Preferences
from routing.strategies import Observed
from routing.stream import UpstreamStream, account_completion, total_tokens
from routing.upstream.transport import HttpTransport

T = TypeVar("T")

_UNSEEN = Observed()
# skip reasons that only time cures: the call is refused with a Retry-After instead of queued
_WAITING = frozenset({"rate_limited", "retry_after"})


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Bounds of one call: upstream attempts, total time, how long to queue when every deployment is full."""

    max_attempts: int = 3
    deadline: float = 600.0
    queue_timeout: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class Leg:
    """One model a call may be served by (its `models` list after the first) with the payload shaped for it."""

    route: ModelRoute
    payload: dict[str, Any]


@dataclass(slots=True)
class _Tries:
    """Where one call's retry loop stands."""

    deadline: float  # monotonic time by which every attempt must be over
    max_attempts: int
    made: int = 0  # upstream attempts sent
    rounds: int = 0  # passes over the plan that sent at least one attempt (the backoff exponent)
    last: UpstreamError | None = None
    queue_until: float | None = None  # one queue_timeout per call, however often the wait is woken up

    def exhausted(self) -> bool:
        return self.made >= self.max_attempts or time.monotonic() >= self.deadline


def _outcome(exc: UpstreamError) -> str:
    if exc.kind == "timeout":
        return "timeout"
    return "rate_limited" if exc.upstream_status == 429 else "error"


def _meaningful(chunk: dict[str, Any]) -> bool:
    """A chunk worth committing the stream for: content, reasoning (vLLM's and OpenRouter's `reasoning`, the older
    `reasoning_content`), a tool call, a finish reason or usage."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if (
            delta.get("content")
            or choice.get("text")
            or delta.get("tool_calls")
            or delta.get("reasoning")
            or delta.get("reasoning_content")
            or choice.get("finish_reason")
        ):
            return True
    return bool(chunk.get("usage"))


Attempt = Callable[[DeploymentConfig, dict[str, Any], float, Admission], Awaitable[T]]
# what a failed model hands on to the next in a call's `models` list (anything but a cancellation)
_NEXT_MODEL = (RoutingError,)


class Executor:
    """Runs a call against a model's deployments: weighted first pick, fallback by weight, one deadline."""

    def __init__(
        self,
        transport: HttpTransport,
        settings: ExecutorSettings = ExecutorSettings(),
        draw: Callable[[], float] | None = None,
        guards: Guards | None = None,
        on_ttft: Callable[[str, float], None] | None = None,
        observed: Callable[[DeploymentConfig], Observed] | None = None,
        on_throughput: Callable[[str, float], None] | None = None,
        board: LoadBoard | None = None,
    ) -> None:
        self.transport, self.settings, self.board = transport, settings, board
        self.answers = Answers(transport)
        self._draw = draw or random.Random().random
        self.guards = guards or Guards(BreakerBoard(), InProcessRateLimiter())
        self._on_ttft = on_ttft
        self._observed_of = observed
        self._on_throughput = on_throughput

    def adapter(self, dep: DeploymentConfig, text: bool = False) -> Adapter:
        return self.answers.adapter(dep, text)

    def plan(
        self,
        route: ModelRoute,
        prefs: Preferences | None = None,
        wants: ProviderRouting | None = None,
        payload: dict[str, Any] | None = None,
        order: Sequence[DeploymentConfig] | None = None,
    ) -> list[DeploymentConfig]:
        """Every usable deployment in the order to try (planning.py), with this executor's draw and state."""
        return plan(route, self._draw(), self.guards.available, self._observed, prefs, wants, payload, order)

    async def _decide(
        self,
        route: ModelRoute,
        prefs: Preferences | None,
        wants: ProviderRouting | None,
        call: Call,
        payload: dict[str, Any],
        deadline: float,
    ) -> tuple[list[DeploymentConfig], Plan | None]:
        """The plan of this call: by weight, or for `local_first` by load (which may hold a low-priority call)."""
        board = self.board
        if board is None or route.kind != "local_first" or not route.entries:
            return self.plan(route, prefs, wants, payload), None
        wait = min(self.settings.queue_timeout, deadline - time.monotonic())
        decided = await board.decide(route, call, payload, self._draw, wait)
        return self.plan(route, prefs, wants, payload, decided.order), decided

    def _observed(self, dep: DeploymentConfig) -> Observed:
        return self._observed_of(dep) if self._observed_of is not None else _UNSEEN

    def _served(self, dep: DeploymentConfig, call: Call, seconds: float) -> None:
        """A deployment answered: the call is its model's now (a `models` fallback), its speed is measured, and
        (local_first) what it cost is charged to the spill budget."""
        call.deployment = dep
        call.model_id = dep.model_id
        completion = int((call.usage or {}).get("completion_tokens") or 0)
        if self._on_throughput is not None and completion > 0 and seconds > 0:
            self._on_throughput(dep.key, completion / seconds)
        if self.board is not None:  # billed for its whole attempt (recorded just before), not its output time
            last = call.attempts[-1] if call.attempts else None
            billed = last.duration_ms / 1000 if last is not None and last.deployment == dep.name else seconds
            self.board.charge_call(call, dep, billed)

    async def _run(
        self,
        legs: Sequence[Leg],
        call: Call,
        attempt: Attempt[T],
        prefs: Preferences | None,
        wants: ProviderRouting | None,
    ) -> T:
        """Each model of the call in turn (its `models` list), handing on whatever the one before failed with."""
        deadline = time.monotonic() + self.settings.deadline
        for leg in legs[:-1]:
            try:
                return await self._run_leg(leg, call, attempt, prefs, wants, deadline)
            except _NEXT_MODEL:
                if time.monotonic() >= deadline:
                    raise
        return await self._run_leg(legs[-1], call, attempt, prefs, wants, deadline)

    async def _run_leg(
        self,
        leg: Leg,
        call: Call,
        attempt: Attempt[T],
        prefs: Preferences | None,
        wants: ProviderRouting | None,
        deadline: float,
    ) -> T:
        """The one retry loop: passes over the plan, skipping deployments that cannot take an attempt now."""
        settings = self.settings
        route, payload = leg.route, leg.payload
        tries = _Tries(deadline=deadline, max_attempts=settings.max_attempts)
        plan, decided = await self._decide(route, prefs, wants, call, payload, deadline)
        first, reason = plan[0].key if plan else "", decided.reason if decided is not None else "weighted"
        tokens = estimate_tokens(prompt_messages(payload), _max_tokens(payload))
        skips: list[Skip] = []
        while not tries.exhausted():
            skips, sent = [], 0
            for dep in plan:
                if tries.exhausted():
                    break
                admitted = await self.guards.admit(dep, route.model, tokens)
                if isinstance(admitted, Skip):
                    skips.append(admitted)
                    continue
                if call.spend is not None:  # the key's budget, at this deployment's price (402 when spent)
                    try:
                        await call.spend.reserve(dep, route.model, payload)
                    except BaseException:
                        await self.guards.abandoned(admitted)
                        raise
                tries.made += 1
                sent += 1
                call.routing_reason = reason if dep.key == first else "fallback"
                began = time.perf_counter()
                if call.trace is not None:
                    call.trace.attempt_began(dep)
                try:
                    return await attempt(dep, payload, tries.deadline - time.monotonic(), admitted)
                except ClientRequestError as exc:
                    call.add_attempt(dep, "client_error", exc.status, began, exc.message)
                    raise
                except UpstreamError as exc:
                    call.upstream_wait += time.perf_counter() - began
                    call.add_attempt(dep, _outcome(exc), exc.upstream_status, began, exc.message)
                    tries.last = exc
                    # the transport already sorted client errors out; what remains may go elsewhere
                    kind = classify_failure(exc.kind, exc.upstream_status)
                    if not exc.retryable or (kind != "client" and not settings.retry.retryable(kind)):
                        raise AllAttemptsFailed(summary(route, call), exc) from None
            if tries.exhausted():
                break
            if not sent:
                if not await self._unblock(route, call, tries, skips):
                    break
                continue
            pause = settings.retry.delay(tries.rounds, self._draw())
            await asyncio.sleep(min(pause, max(0.0, tries.deadline - time.monotonic())))
            tries.rounds += 1
        if tries.last is None:
            waits = [s.retry_after for s in skips if s.retry_after is not None]
            raise NoDeploymentAvailable(summary(route, call), min(waits) if waits else None)
        raise AllAttemptsFailed(summary(route, call), tries.last)

    async def _unblock(self, route: ModelRoute, call: Call, tries: _Tries, skips: list[Skip]) -> bool:
        """A pass sent nothing, every deployment was skipped: wait for room; True to pass over the plan again,
        False to give up. Raises when only time can help. An open circuit is never pushed past: nothing can serve
        until its cooldown ends or a passing health probe readies its trial, so the call gets 503 (as /health)."""
        for skip in skips:
            call.add_skip(skip.dep, skip.reason)
        if skips and all(s.reason in _WAITING for s in skips):
            raise blocked(route, skips)
        full = [s.dep for s in skips if s.reason == "full"]
        if full:
            now = time.monotonic()
            if tries.queue_until is None:
                tries.queue_until = now + self.settings.queue_timeout
            if not await self.guards.wait_for_room(min(tries.queue_until, tries.deadline) - now, full):
                raise NoDeploymentAvailable(f"every deployment of {route.model.id} is at max_concurrent")
            return True
        return False

    async def run(
        self,
        route: ModelRoute,
        payload: dict[str, Any],
        call: Call,
        attempt: Attempt[T],
        wants: ProviderRouting | None = None,
    ) -> T:
        """The retry loop over `route` with any other kind of attempt (embeddings: routing/embeddings.py)."""
        return await self._run([Leg(route, payload)], call, attempt, None, wants)

    async def complete(
        self,
        route: ModelRoute,
        payload: dict[str, Any],
        call: Call,
        prefs: Preferences | None = None,
        wants: ProviderRouting | None = None,
        then: Sequence[Leg] = (),
        text: bool = False,
    ) -> dict[str, Any]:
        """A non-streamed completion, falling back before anything reached the client (to the models of `then`
        once every deployment of `route` has failed). `text`: the payload is a legacy completions request,
        answered as a `text_completion` (natively or by translation, per deployment)."""

        async def attempt(
            dep: DeploymentConfig, payload: dict[str, Any], budget: float, admitted: Admission
        ) -> dict[str, Any]:
            began = time.perf_counter()
            try:
                result = await self.answers.complete(dep, payload, budget, text)
            except UpstreamError as exc:
                await self.guards.failed(admitted, exc)
                raise
            except BaseException:  # cancelled: the client left (or shutdown); the attempt still ran until now
                call.upstream_wait += time.perf_counter() - began
                call.add_attempt(dep, "cancelled", None, began, "cancelled before the upstream answered")
                await self.guards.abandoned(admitted)
                raise
            elapsed = time.perf_counter() - began
            call.upstream_wait += elapsed
            call.add_attempt(dep, "ok", 200, began)
            call.first_token_at = time.perf_counter()
            account_completion(call, result)
            self._served(dep, call, elapsed)
            call.completions = completions_mode(dep, text)
            await self.guards.succeeded(admitted, total_tokens(call))
            if self._on_ttft is not None:
                self._on_ttft(dep.key, elapsed * 1000.0)
            return result

        return await self._run([Leg(route, payload), *then], call, attempt, prefs, wants)

    async def stream(
        self,
        route: ModelRoute,
        payload: dict[str, Any],
        call: Call,
        prefs: Preferences | None = None,
        wants: ProviderRouting | None = None,
        then: Sequence[Leg] = (),
        text: bool = False,
    ) -> UpstreamStream:
        """Open a stream, falling back until one deployment sends its first meaningful chunk (the commit point),
        to the models of `then` once every deployment of `route` has failed. `text`: a legacy completions
        request, streamed as `text_completion` chunks."""

        async def attempt(
            dep: DeploymentConfig, payload: dict[str, Any], budget: float, admitted: Admission
        ) -> UpstreamStream:
            began = time.perf_counter()
            batches = self.answers.batches(dep, payload, budget, text)
            head: list[dict[str, Any]] = []
            try:
                async with asyncio.timeout(min(dep.timeouts.first_token, budget)):
                    while True:
                        batch = await anext(batches, None)
                        if batch is None:
                            raise UpstreamError("protocol", f"{dep.name}: stream ended before any content")
                        head.extend(batch)
                        if any(_meaningful(chunk) for chunk in batch):
                            break
            except TimeoutError:
                await batches.aclose()
                exc = UpstreamError("timeout", f"{dep.name}: no first token within {dep.timeouts.first_token:g}s")
                await self.guards.failed(admitted, exc)
                raise exc from None
            except UpstreamError as exc:
                await batches.aclose()
                await self.guards.failed(admitted, exc)
                raise
            except BaseException:
                await batches.aclose()
                await self.guards.abandoned(admitted)
                raise
            call.deployment = dep
            call.model_id = dep.model_id
            call.completions = completions_mode(dep, text)
            call.first_token_at = time.perf_counter()
            if self._on_ttft is not None:
                self._on_ttft(dep.key, (call.first_token_at - began) * 1000.0)
            return UpstreamStream(dep, head, batches, call, began, self.guards, admitted, self._stream_served)

        return await self._run([Leg(route, payload), *then], call, attempt, prefs, wants)

    def _stream_served(self, dep: DeploymentConfig, call: Call) -> None:
        """A stream ended well: its generation speed is its tokens over the time since its first token."""
        self._served(dep, call, time.perf_counter() - (call.first_token_at or call.started))


def _max_tokens(payload: dict[str, Any]) -> int | None:
    value = payload.get("max_tokens") or payload.get("max_completion_tokens")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
