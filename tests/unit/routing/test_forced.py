"""The "every deployment is unavailable" paths: 503 without a request, one trial at a time, Retry-After refusals,
bounded queueing, reloads."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from routing.answers import Answers
from routing.call import Call
from routing.config.schema import DeploymentConfig, GatewayConfig, ModelConfig, RoutingConfig
from routing.errors import NoDeploymentAvailable, RateLimited, UpstreamError
from routing.executor import Executor, ExecutorSettings
from routing.limits.admission import Admission, Guards, Skip
from routing.limits.breaker import BreakerBoard, BreakerConfig
from routing.limits.ratelimit import Denial, InProcessRateLimiter, LimitState
from routing.manager import ModelRoute, RoutingManager
from routing.upstream.health import HealthMonitor, HealthTracker, ProbeTarget
from routing.upstream.transport import HttpTransport


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def dep(name: str, **kw: Any) -> DeploymentConfig:
    return DeploymentConfig(name, "m", "openai", "p", f"http://{name}/v1", "x", 1.0, **kw)


def config(*deps: DeploymentConfig) -> GatewayConfig:
    return GatewayConfig(models=(ModelConfig("m", "M", deps),), routing=RoutingConfig(strategy="weighted"))


class ScriptedAnswers(Answers):
    """Upstream answers from a script per deployment name: an error to raise, or success."""

    def __init__(self, script: dict[str, UpstreamError | None]) -> None:
        super().__init__(cast(HttpTransport, None))
        self.script, self.hits = script, {name: 0 for name in script}

    async def complete(
        self, dep: DeploymentConfig, payload: dict[str, Any], budget: float, text: bool = False
    ) -> dict[str, Any]:
        self.hits[dep.name] += 1
        error = self.script[dep.name]
        if error is not None:
            raise error
        return {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}


class Scripted(Executor):
    """An executor whose upstream answers from a script (ScriptedAnswers)."""

    def __init__(self, guards: Guards, script: dict[str, UpstreamError | None], **settings: Any) -> None:
        super().__init__(cast(HttpTransport, None), ExecutorSettings(**settings), draw=lambda: 0.0, guards=guards)
        self.answers = scripted = ScriptedAnswers(script)
        self.hits = scripted.hits


def setup(*deps: DeploymentConfig, breaker: BreakerConfig | None = None) -> tuple[ModelRoute, Guards, Clock]:
    clock = Clock()
    guards = Guards(BreakerBoard(breaker), InProcessRateLimiter(), clock=clock)
    route = RoutingManager(config(*deps)).route("m")
    assert route is not None
    return route, guards, clock


def call() -> Call:
    return Call("r", "m", False)


PAYLOAD = {"messages": [{"role": "user", "content": "hi"}]}
THROTTLED = UpstreamError("status", "a: HTTP 429", status=429, retry_after=30.0)


async def test_only_deployment_under_retry_after_is_refused_not_forced() -> None:
    route, guards, clock = setup(dep("a"))
    ex = Scripted(guards, {"a": THROTTLED})
    with pytest.raises(RateLimited) as first:
        await ex.complete(route, PAYLOAD, call())
    assert ex.hits == {"a": 1} and first.value.headers["retry-after"] == "30"
    clock.now += 10
    with pytest.raises(RateLimited) as second:
        await ex.complete(route, PAYLOAD, call())
    assert ex.hits == {"a": 1} and second.value.retry_after == pytest.approx(20.0)


async def test_503_retry_after_everywhere_refuses_with_503() -> None:
    route, guards, _ = setup(dep("a"))
    ex = Scripted(guards, {"a": UpstreamError("status", "a: HTTP 503", status=503, retry_after=7.0)})
    with pytest.raises(NoDeploymentAvailable) as refused:
        await ex.complete(route, PAYLOAD, call())
    assert ex.hits == {"a": 1} and refused.value.retry_after == pytest.approx(7.0)


async def test_nothing_can_serve_is_a_503_without_an_upstream_request() -> None:
    """Issue 19: an open circuit beside a Retry-After used to be pushed past (a request, a 502); /health said 503."""
    route, guards, clock = setup(dep("a"), dep("b"), breaker=BreakerConfig(consecutive_failures=1, cooldown=60))
    guards.breakers.block_until("m/a", clock.now + 30)
    guards.breakers.record_failure("m/b", clock.now)
    ex = Scripted(guards, {"a": None, "b": UpstreamError("status", "b: HTTP 500", status=500)})
    with pytest.raises(NoDeploymentAvailable) as refused:
        await ex.complete(route, PAYLOAD, call())
    assert ex.hits == {"a": 0, "b": 0}
    assert refused.value.status == 503 and refused.value.retry_after == pytest.approx(30.0)
    assert "b: circuit open" in refused.value.message


async def test_a_passing_probe_lets_the_open_circuits_trial_run_at_once() -> None:
    route, guards, clock = setup(dep("a"), breaker=BreakerConfig(consecutive_failures=1, cooldown=60))
    guards.breakers.record_failure("m/a", clock.now)
    assert guards.breakers.probe_passed("m/a") and not guards.breakers.probe_passed("m/a")
    ex = Scripted(guards, {"a": None})
    await ex.complete(route, PAYLOAD, call())
    assert ex.hits == {"a": 1} and guards.breakers.status("m/a") == "closed"


async def test_a_trial_is_one_at_a_time() -> None:
    route, guards, clock = setup(dep("a"), breaker=BreakerConfig(consecutive_failures=1, cooldown=60))
    guards.breakers.record_failure("m/a", clock.now)
    clock.now += 61
    assert guards.breakers.try_acquire("m/a", clock.now)  # someone else's trial is running
    ex = Scripted(guards, {"a": None})
    with pytest.raises(NoDeploymentAvailable) as refused:
        await ex.complete(route, PAYLOAD, call())
    assert ex.hits == {"a": 0} and (refused.value.retry_after or 0) > 0


async def test_queue_wait_is_one_queue_timeout_per_call_whatever_wakes_it() -> None:
    route, guards, _ = setup(dep("a", max_concurrent=1))
    held = await guards.admit(route.entries[0].deployment, route.model, 1)
    assert isinstance(held, Admission)
    ex = Scripted(guards, {"a": None}, queue_timeout=0.3)
    loop = asyncio.get_running_loop()

    async def noise() -> None:
        # attempts finishing elsewhere wake every waiter; none of them may restart the wait
        for _ in range(20):
            await asyncio.sleep(0.05)
            other = await guards.admit(dep("z"), route.model, 1)
            assert isinstance(other, Admission)
            await guards.succeeded(other)

    task = asyncio.create_task(noise())
    began = loop.time()
    with pytest.raises(NoDeploymentAvailable):
        await ex.complete(route, PAYLOAD, call())
    assert 0.25 <= loop.time() - began < 0.6 and ex.hits == {"a": 0}
    task.cancel()
    await guards.succeeded(held)


async def test_room_freed_before_the_wait_is_not_missed() -> None:
    guards = Guards(BreakerBoard(), InProcessRateLimiter())
    full = dep("a", max_concurrent=1)
    assert await guards.wait_for_room(0.01, [full])
    assert await guards.wait_for_room(0.0, [full])


def denial(wait: float, remaining: int) -> Denial:
    state = LimitState("deployment:m/x", 5, remaining, wait, 0, 0, 0.0)
    return Denial("deployment:m/x", "requests", wait, (state,))


def test_rate_limit_headers_come_from_the_soonest_skip() -> None:
    from routing.exhausted import blocked

    route, _, _ = setup(dep("a"), dep("b"), dep("c"))
    a, b, c = (e.deployment for e in route.entries)
    skips = [
        Skip(a, "rate_limited", 40.0, denial(40.0, 0)),
        Skip(b, "rate_limited", 4.0, denial(4.0, 1)),
        Skip(c, "retry_after", 9.0, status=503),
    ]
    error = blocked(route, skips)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 4.0 and error.headers["retry-after"] == "4"
    assert error.headers["x-ratelimit-remaining-requests"] == "1"
    upstream_only = blocked(route, [Skip(a, "retry_after", 12.0, status=429), Skip(b, "retry_after", 3.5, status=429)])
    assert isinstance(upstream_only, RateLimited) and upstream_only.headers == {"retry-after": "4"}


def test_health_carry_over_keeps_a_known_outage_so_recovery_flips() -> None:
    old = HealthTracker()
    old.record_probe("m/a", False, 1.0, "HTTP 503")
    old.record_probe("m/a", False, 2.0, "HTTP 503")
    new = HealthTracker()
    new.carry_over(old, ["m/a", "m/gone"])
    assert not new.healthy("m/a") and new.state("m/a").last_error == "HTTP 503"
    assert new.record_probe("m/a", True, 3.0) is True
    assert old.state("m/a").status == "unhealthy", "the old tracker is copied, not shared"


def test_monitor_carries_over_only_probes_that_did_not_change() -> None:
    def target(key: str, url: str) -> ProbeTarget:
        return ProbeTarget(key, url, url, 1.0, 1.0)

    old = HealthMonitor(lambda: cast(Any, None), [target("m/a", "http://a/health"), target("m/b", "http://b/health")])
    for key in ("m/a", "m/b"):
        old.tracker.record_probe(key, False, 1.0)
        old.tracker.record_probe(key, False, 2.0)
    new = HealthMonitor(lambda: cast(Any, None), [target("m/a", "http://a/health"), target("m/b", "http://b2/health")])
    new.carry_over(old)
    assert (new.healthy("m/a"), new.state("m/b").status) == (False, "unknown")


def test_reload_forgets_down_state_of_deployments_that_left() -> None:
    manager = RoutingManager(config(dep("a"), dep("b")))
    manager.set_available("m/a", False, "health check failed: HTTP 503")
    manager.replace_config(config(dep("b")))
    assert manager.unavailable() == {}
    manager.replace_config(config(dep("a"), dep("b")))
    route = manager.route("m")
    assert route is not None and [e.weight for e in route.entries] == [0.5, 0.5]
