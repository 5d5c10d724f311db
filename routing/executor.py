"""The executor: the one place that does upstream I/O, retries and fallback, bounded by attempts and a deadline."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from adapters.base import Adapter, ProtocolError
from adapters.kinds import kind_spec
from adapters.redact import redact
from adapters.registry import adapter_for
from routing.call import Call
from routing.config.schema import DeploymentConfig
from routing.errors import (
    AllAttemptsFailed,
    ClientRequestError,
    NoDeploymentAvailable,
    RateLimited,
    RoutingError,
    UpstreamError,
)
from routing.limits.admission import Admission, Guards, Skip
from routing.limits.breaker import BreakerBoard
from routing.limits.ratelimit import InProcessRateLimiter, estimate_tokens
from routing.load_board import LoadBoard
from routing.local_first import Plan
from routing.manager import ModelRoute
from routing.retry import RetryPolicy, classify_failure
from routing.selection import Preferences, attempt_order, preferred_order
from routing.stream import UpstreamStream, account_completion, chunks_from_completion, total_tokens
from routing.upstream.transport import HttpTransport

T = TypeVar("T")

# skip reasons that only time cures: the call is refused with a Retry-After instead of forced or queued
_WAITING = frozenset({"rate_limited", "retry_after"})


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Bounds of one call: upstream attempts, total time, how long to queue when every deployment is full."""

    max_attempts: int = 3
    deadline: float = 600.0
    queue_timeout: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(slots=True)
class _Tries:
    """Where one call's retry loop stands."""

    deadline: float  # monotonic time by which every attempt must be over
    max_attempts: int
    made: int = 0  # upstream attempts sent
    rounds: int = 0  # passes over the plan that sent at least one attempt (the backoff exponent)
    last: UpstreamError | None = None
    pushed: str | None = None  # the deployment this pass may try past its open circuit
    pushed_once: bool = False  # a call pushes past an open circuit at most once
    queue_until: float | None = None  # one queue_timeout per call, however often the wait is woken up

    def exhausted(self) -> bool:
        return self.made >= self.max_attempts or time.monotonic() >= self.deadline


def _outcome(exc: UpstreamError) -> str:
    if exc.kind == "timeout":
        return "timeout"
    return "rate_limited" if exc.upstream_status == 429 else "error"


def _meaningful(chunk: dict[str, Any]) -> bool:
    """A chunk worth committing the stream for: content, a tool call, a finish reason or usage."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if (
            delta.get("content")
            or delta.get("tool_calls")
            or delta.get("reasoning_content")
            or choice.get("finish_reason")
        ):
            return True
    return bool(chunk.get("usage"))


Attempt = Callable[[DeploymentConfig, float, Admission], Awaitable[T]]


class Executor:
    """Runs a call against a model's deployments: weighted first pick, fallback by weight, one deadline."""

    def __init__(
        self,
        transport: HttpTransport,
        settings: ExecutorSettings = ExecutorSettings(),
        draw: Callable[[], float] | None = None,
        guards: Guards | None = None,
        on_ttft: Callable[[str, float], None] | None = None,
        latency: Callable[[DeploymentConfig], float | None] | None = None,
        board: LoadBoard | None = None,
    ) -> None:
        self.transport, self.settings, self.board = transport, settings, board
        self._draw = draw or random.Random().random
        self._adapters: dict[str, Adapter] = {}
        self.guards = guards or Guards(BreakerBoard(), InProcessRateLimiter())
        self._on_ttft = on_ttft
        self._latency_of = latency

    def adapter(self, dep: DeploymentConfig) -> Adapter:
        adapter = self._adapters.get(dep.kind)
        if adapter is None:
            spec = kind_spec(dep.kind)
            if spec is None:
                raise NoDeploymentAvailable(f"deployment {dep.name} has unknown kind {dep.kind}")
            adapter = adapter_for(spec)
            self._adapters[dep.kind] = adapter
        return adapter

    def plan(self, route: ModelRoute, prefs: Preferences | None = None) -> list[DeploymentConfig]:
        """Every usable deployment in the order to try: a weighted draw first, then the others by weight,
        reordered by the request's preferences; those whose circuit is open go last."""
        if not route.entries:
            raise NoDeploymentAvailable(f"model {route.model.id} has no enabled deployment")
        order = [e.deployment for e in attempt_order(route.entries, route.weights, self._draw())]
        return self._preferred(route, order, prefs)

    def _preferred(
        self, route: ModelRoute, order: list[DeploymentConfig], prefs: Preferences | None
    ) -> list[DeploymentConfig]:
        if prefs is not None:
            order = preferred_order(order, prefs, self._latency)
            if prefs.strict_region and prefs.region:
                order = [d for d in order if d.region == prefs.region]
                if not order:
                    raise NoDeploymentAvailable(f"no deployment of {route.model.id} in region {prefs.region}")
        return sorted(order, key=lambda d: not self.guards.available(d))

    async def _decide(
        self, route: ModelRoute, prefs: Preferences | None, call: Call, payload: dict[str, Any], deadline: float
    ) -> tuple[list[DeploymentConfig], Plan | None]:
        """The plan of this call: by weight, or for `local_first` by load (which may hold a low-priority call)."""
        board = self.board
        if board is None or route.kind != "local_first" or not route.entries:
            return self.plan(route, prefs), None
        wait = min(self.settings.queue_timeout, deadline - time.monotonic())
        decided = await board.decide(route, call, payload, self._draw, wait)
        return self._preferred(route, list(decided.order), prefs), decided

    def _latency(self, dep: DeploymentConfig) -> float | None:
        return self._latency_of(dep) if self._latency_of is not None else None

    async def _run(
        self, route: ModelRoute, payload: dict[str, Any], call: Call, attempt: Attempt[T], prefs: Preferences | None
    ) -> T:
        """The one retry loop: passes over the plan, skipping deployments that cannot take an attempt now."""
        settings = self.settings
        tries = _Tries(deadline=time.monotonic() + settings.deadline, max_attempts=settings.max_attempts)
        plan, decided = await self._decide(route, prefs, call, payload, tries.deadline)
        first, reason = plan[0].key if plan else "", decided.reason if decided is not None else "weighted"
        tokens = estimate_tokens(payload.get("messages") or (), _max_tokens(payload))
        skips: list[Skip] = []
        while not tries.exhausted():
            skips, sent = [], 0
            for dep in plan:
                if tries.exhausted():
                    break
                admitted = await self.guards.admit(dep, route.model, tokens, force=dep.key == tries.pushed)
                if isinstance(admitted, Skip):
                    skips.append(admitted)
                    continue
                tries.made += 1
                sent += 1
                call.routing_reason = reason if dep.key == first else "fallback"
                began = time.perf_counter()
                try:
                    return await attempt(dep, tries.deadline - time.monotonic(), admitted)
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
                        raise AllAttemptsFailed(_summary(route, call), exc) from None
            tries.pushed = None
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
            raise NoDeploymentAvailable(_summary(route, call), min(waits) if waits else None)
        raise AllAttemptsFailed(_summary(route, call), tries.last)

    async def _unblock(self, route: ModelRoute, call: Call, tries: _Tries, skips: list[Skip]) -> bool:
        """A pass sent nothing, every deployment was skipped: wait for room, or pick one to push past its open
        circuit; True to pass over the plan again, False to give up. Raises when only time can help."""
        for skip in skips:
            call.add_skip(skip.dep, skip.reason)
        if skips and all(s.reason in _WAITING for s in skips):
            raise _blocked(route, skips)
        full = [s.dep for s in skips if s.reason == "full"]
        if full:
            now = time.monotonic()
            if tries.queue_until is None:
                tries.queue_until = now + self.settings.queue_timeout
            if not await self.guards.wait_for_room(min(tries.queue_until, tries.deadline) - now, full):
                raise NoDeploymentAvailable(f"every deployment of {route.model.id} is at max_concurrent")
            return True
        if tries.pushed_once:
            return False
        # every circuit is open: still try the one most likely to recover rather than fail untried, but only once
        # per call, never past an upstream's Retry-After and never beside a running trial
        tries.pushed = self.guards.breakers.best_to_force(
            [s.dep.key for s in skips if s.reason == "circuit_open"], time.monotonic()
        )
        tries.pushed_once = tries.pushed is not None
        return tries.pushed_once

    async def complete(
        self, route: ModelRoute, payload: dict[str, Any], call: Call, prefs: Preferences | None = None
    ) -> dict[str, Any]:
        """A non-streamed completion, falling back before anything reached the client."""

        async def attempt(dep: DeploymentConfig, budget: float, admitted: Admission) -> dict[str, Any]:
            began = time.perf_counter()
            try:
                result = await self._complete_once(dep, payload, budget)
            except UpstreamError as exc:
                await self.guards.failed(admitted, exc)
                raise
            except BaseException:
                await self.guards.abandoned(admitted)
                raise
            elapsed = time.perf_counter() - began
            call.upstream_wait += elapsed
            call.add_attempt(dep, "ok", 200, began)
            call.deployment = dep
            call.first_token_at = time.perf_counter()
            account_completion(call, result)
            if self.board is not None:
                self.board.charge_call(call, dep, elapsed)
            await self.guards.succeeded(admitted, total_tokens(call))
            if self._on_ttft is not None:
                self._on_ttft(dep.key, elapsed * 1000.0)
            return result

        return await self._run(route, payload, call, attempt, prefs)

    async def _complete_once(self, dep: DeploymentConfig, payload: dict[str, Any], budget: float) -> dict[str, Any]:
        adapter = self.adapter(dep)
        request = adapter.build(dep, payload, stream=False)
        resp = await self.transport.open(dep, request, adapter, budget)
        return await self.transport.read_json(dep, resp, adapter, request)

    async def stream(
        self, route: ModelRoute, payload: dict[str, Any], call: Call, prefs: Preferences | None = None
    ) -> UpstreamStream:
        """Open a stream, falling back until one deployment sends its first meaningful chunk (the commit point)."""

        async def attempt(dep: DeploymentConfig, budget: float, admitted: Admission) -> UpstreamStream:
            began = time.perf_counter()
            batches = self._batches(dep, payload, budget)
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
            call.first_token_at = time.perf_counter()
            if self._on_ttft is not None:
                self._on_ttft(dep.key, (call.first_token_at - began) * 1000.0)
            board = self.board
            charge = None if board is None else lambda: board.charge_call(call, dep, time.perf_counter() - began)
            return UpstreamStream(dep, head, batches, call, began, self.guards, admitted, charge)

        return await self._run(route, payload, call, attempt, prefs)

    async def _batches(
        self, dep: DeploymentConfig, payload: dict[str, Any], budget: float
    ) -> AsyncGenerator[list[dict[str, Any]]]:
        """The upstream's chunks, grouped as they arrived: one non-empty list per upstream read."""
        adapter = self.adapter(dep)
        if not adapter.streams:
            chunks = chunks_from_completion(await self._complete_once(dep, payload, budget))
            if chunks:
                yield chunks
            return
        resp = await self.transport.open(dep, adapter.build(dep, payload, stream=True), adapter, budget)
        parse = adapter.parse_event
        clean, finished, stop = False, False, False
        try:
            async for events in self.transport.sse_batches(dep, resp, dep.timeouts):
                batch: list[dict[str, Any]] = []
                failure: UpstreamError | None = None
                for data in events:
                    try:
                        event = parse(data)
                    except ProtocolError as exc:
                        failure = UpstreamError("protocol", f"{dep.name}: {exc}")
                        break
                    if event.error:
                        failure = UpstreamError("stream", f"{dep.name}: {redact(event.error, (dep.api_key,))}")
                        break
                    if event.done:
                        clean = stop = True
                        break
                    parsed = event.chunk
                    if parsed is None:
                        continue
                    if not finished and any(c.get("finish_reason") for c in parsed.get("choices") or ()):
                        finished = True
                    batch.append(parsed)
                    if finished and parsed.get("usage"):
                        clean = stop = True  # some never send [DONE]: usage after the finish is the end
                        break
                if batch:
                    yield batch  # what arrived before a failure still reaches the client first
                if failure is not None:
                    raise failure
                if stop:
                    return
            if not finished:
                raise UpstreamError("stream", f"{dep.name}: stream ended before it finished")
            clean = True
        except UpstreamError as exc:
            if not (finished and exc.kind == "timeout"):
                raise
        finally:
            if clean:
                resp.release()
            else:
                resp.close()


def _max_tokens(payload: dict[str, Any]) -> int | None:
    value = payload.get("max_tokens") or payload.get("max_completion_tokens")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _blocked(route: ModelRoute, skips: list[Skip]) -> RoutingError:
    """Every deployment waits out a limit: 429, or 503 when each upstream asked with a 503; either way with the
    soonest wait as Retry-After, so the client comes back when something can serve it."""
    waits = [s.retry_after for s in skips if s.retry_after is not None]
    wait = min(waits) if waits else 1.0
    if all(s.reason == "retry_after" and s.status == 503 for s in skips):
        return NoDeploymentAvailable(
            f"every deployment of {route.model.id} is unavailable (503 with Retry-After); retry in {wait:.1f}s", wait
        )
    denials = [s.denial for s in skips if s.denial is not None]
    headers = min(denials, key=lambda d: d.retry_after).headers() if denials else {}
    headers["retry-after"] = str(max(1, math.ceil(wait)))
    return RateLimited(
        f"every deployment of {route.model.id} is at its rate limit; retry in {wait:.1f}s", wait, headers
    )


def _summary(route: ModelRoute, call: Call) -> str:
    if not call.attempts:
        return f"no deployment of {route.model.id} could be tried within the deadline"
    tried = "; ".join(f"{a.deployment}: {a.error or a.outcome}" for a in call.attempts)
    return f"all {len(call.attempts)} attempt(s) for {route.model.id} failed ({tried})"
