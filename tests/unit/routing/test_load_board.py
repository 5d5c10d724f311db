"""The live side of local_first on an injected clock: latches, spilling since, the budget charge, /routing rows."""

from __future__ import annotations

from routing.call import Call
from routing.config.schema import (
    DeploymentConfig,
    EndpointGroup,
    GatewayConfig,
    LocalFirstConfig,
    ModelConfig,
    Pricing,
    RoutingConfig,
)
from routing.limits.admission import Guards
from routing.limits.breaker import BreakerBoard
from routing.limits.ratelimit import InProcessRateLimiter
from routing.load import EngineSample, ScrapeState
from routing.load_board import LoadBoard
from routing.manager import RoutingManager

GPU = DeploymentConfig("gpu", "m", "vllm", "local", "http://gpu:8000/v1", "m", 1.0)
CLOUD = DeploymentConfig("cloud", "m", "openai", "openai", "http://cloud/v1", "m", 1.0, pricing=Pricing(1e6, 1e6))
ROUTING = RoutingConfig(
    strategy="local_first",
    local=(EndpointGroup("http://gpu:8000", ("m",)),),
    remote=(EndpointGroup("http://cloud", ("m",)),),
    local_first=LocalFirstConfig(max_waiting=4, spill_budget_usd_per_hour=5.0),
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def setup() -> tuple[LoadBoard, RoutingManager, dict[str, ScrapeState], Clock]:
    manager = RoutingManager(GatewayConfig(models=(ModelConfig("m", "m", (GPU, CLOUD)),), routing=ROUTING))
    states: dict[str, ScrapeState] = {}
    clock = Clock()
    board = LoadBoard(ROUTING, states.get, Guards(BreakerBoard(), InProcessRateLimiter()), clock=clock, wall=clock)
    return board, manager, states, clock


def waiting(n: float, at: float = 100.0) -> ScrapeState:
    return ScrapeState(EngineSample(at=at, in_flight_at=0, running=4, waiting=n))


def test_spilling_since_is_set_when_every_local_deployment_is_full_and_cleared_when_it_resumes() -> None:
    board, manager, states, clock = setup()
    route = manager.route("m")
    assert route is not None and route.kind == "local_first"
    states[GPU.key] = waiting(9)
    plan = board.plan(route, Call("r1", "m", False), {}, (0.0, 0.0))
    assert plan.reason == "spill:queue" and [d.name for d in plan.order] == ["cloud", "gpu"]
    assert board.model_state("m") == {"spilling": True, "spilling_since": 100.0}
    assert board.describe(GPU)["full_reason"] == "queue"
    clock.now = 100.5
    states[GPU.key] = waiting(1, at=100.5)
    assert board.plan(route, Call("r2", "m", False), {}, (0.0, 0.0)).reason == "local"
    assert board.model_state("m") == {"spilling": False, "spilling_since": None}


def test_only_spilled_calls_are_charged_to_the_budget() -> None:
    board, _, _, _ = setup()
    call = Call("r", "m", False, usage={"prompt_tokens": 2, "completion_tokens": 1})
    call.routing_reason = "local"
    board.charge_call(call, CLOUD, 1.0)
    assert board.budget_state()["spill_spent_usd_last_hour"] == 0.0
    call.routing_reason = "spill:queue"
    board.charge_call(call, CLOUD, 1.0)
    assert board.budget_state() == {
        "spill_budget_usd_per_hour": 5.0,
        "spill_spent_usd_last_hour": 3.0,
        "spill_budget_used": 0.6,
    }


def test_a_remote_deployment_that_is_down_comes_after_the_healthy_ones() -> None:
    second = DeploymentConfig("cloud-2", "m", "openai", "openai", "http://cloud-2/v1", "m", 0.5)
    routing = RoutingConfig(
        strategy="local_first",
        local=ROUTING.local,
        remote=(*ROUTING.remote, EndpointGroup("http://cloud-2", ("m",))),
    )
    manager = RoutingManager(GatewayConfig(models=(ModelConfig("m", "m", (GPU, CLOUD, second)),), routing=routing))
    states = {GPU.key: waiting(9)}
    board = LoadBoard(routing, states.get, Guards(BreakerBoard(), InProcessRateLimiter()), clock=Clock(), wall=Clock())
    route = manager.route("m")
    assert route is not None
    assert [d.name for d in board.plan(route, Call("r", "m", False), {}, (0, 0)).order] == ["cloud", "cloud-2", "gpu"]
    manager.set_available(CLOUD.key, False, "health check failed")
    route = manager.route("m")
    assert route is not None
    assert [d.name for d in board.plan(route, Call("r", "m", False), {}, (0, 0)).order] == ["cloud-2", "cloud", "gpu"]
