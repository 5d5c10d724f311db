from __future__ import annotations

from dataclasses import replace

from routing.config.schema import (
    DeploymentConfig,
    EndpointGroup,
    GatewayConfig,
    ModelConfig,
    Pricing,
    RoutingConfig,
    StrategyConfig,
)
from routing.manager import RoutingManager
from routing.strategies import Observed, cheapest_first, fastest_first, fixed, weighted


def dep(name: str, url: str, weight: float = 1.0, kind: str = "openai", **kw: object) -> DeploymentConfig:
    return DeploymentConfig(
        name=name, model_id="m", kind=kind, provider=kind, base_url=url, provider_model_id="m", weight=weight, **kw
    )  # type: ignore[arg-type]


LOCAL = dep("local", "http://gpu:8000/v1", kind="vllm")
REMOTE = dep("remote", "https://api.llama.com/compat/v1", kind="llama")
OTHER = dep("other", "https://cloud.example/v1", weight=1.0)


def routing(fraction: float = 0.6) -> RoutingConfig:
    return RoutingConfig(
        local_fraction=fraction,
        local=(EndpointGroup("http://gpu:8000", ("m",)),),
        remote=(EndpointGroup("https://api.llama.com/compat/v1", ("m",)),),
    )


def test_fixed_splits_local_and_remote() -> None:
    model = ModelConfig(id="m", name="m", deployments=(LOCAL, REMOTE))
    assert [round(w, 6) for w in fixed(model, routing(), 0.6)] == [0.6, 0.4]


def test_one_side_empty_gives_the_other_everything() -> None:
    model = ModelConfig(id="m", name="m", deployments=(LOCAL, OTHER))
    r = RoutingConfig(local_fraction=0.3, local=(EndpointGroup("http://gpu:8000", ("m",)),))
    weights = fixed(model, r, 0.3)
    assert weights[1] == 0.5  # unnamed keeps its models.yaml share
    assert weights[0] == 0.5  # the named local side takes all that is left


def test_unnamed_deployments_keep_their_share_and_sum_is_one() -> None:
    model = ModelConfig(id="m", name="m", deployments=(LOCAL, REMOTE, OTHER))
    weights = fixed(model, routing(0.6), 0.6)
    assert abs(sum(weights) - 1) < 1e-9
    assert abs(weights[2] - 1 / 3) < 1e-9
    assert abs(weights[0] / weights[1] - 1.5) < 1e-9


def test_manager_renormalises_when_a_deployment_goes_down() -> None:
    config = GatewayConfig(
        models=(ModelConfig(id="m", name="m", deployments=(LOCAL, REMOTE, OTHER)),), routing=routing()
    )
    manager = RoutingManager(config)
    assert manager.set_available(LOCAL.key, False, "health check failed")
    route = manager.route("m")
    assert route is not None
    assert route.entries[0].weight == 0.0 and not route.entries[0].available
    assert abs(sum(route.weights) - 1.0) < 1e-9
    assert manager.set_available(LOCAL.key, True)
    route = manager.route("m")
    assert route is not None and route.entries[0].weight > 0


def test_soft_offload_changes_weights_at_run_time() -> None:
    config = GatewayConfig(models=(ModelConfig(id="m", name="m", deployments=(LOCAL, REMOTE)),), routing=routing())
    manager = RoutingManager(config)
    before = manager.route("m")
    manager.set_local_fraction(0.0)
    after = manager.route("m")
    assert before is not None and after is not None
    assert [round(w, 3) for w in before.weights] == [0.6, 0.4]
    assert after.weights == [0.0, 1.0]
    assert [round(w, 3) for w in before.weights] == [0.6, 0.4]  # the old table is unchanged for in-flight calls


def test_cost_and_latency_strategies() -> None:
    cheap = dep("cheap", "http://a/v1", pricing=Pricing(prompt=0.1, completion=0.1))
    dear = dep("dear", "http://b/v1", pricing=Pricing(prompt=1, completion=1))
    model = ModelConfig(id="m", name="m", deployments=(dear, cheap))
    assert cheapest_first(model, {}) == [0.0, 1.0]
    # untried deployments are not assumed fastest: with no data, configured weights stay
    assert fastest_first(model, {}) == [0.5, 0.5]
    assert fastest_first(model, {dear.key: Observed(50.0)}) == [1.0, 0.0]
    assert fastest_first(model, {dear.key: Observed(50.0), cheap.key: Observed(20.0)}) == [0.0, 1.0]


def test_named_weighted_strategy_per_model() -> None:
    r = RoutingConfig(
        strategies=(StrategyConfig("split", "weighted", weights=(("local", 70.0), ("remote", 30.0))),),
        model_strategies=(("m", "split"),),
    )
    config = GatewayConfig(models=(ModelConfig(id="m", name="m", deployments=(LOCAL, REMOTE)),), routing=r)
    route = RoutingManager(config).route("m")
    assert route is not None and route.strategy == "split"
    assert [round(w, 3) for w in route.weights] == [0.7, 0.3]


def test_provider_weight_is_shared_among_its_deployments() -> None:
    golem_us, golem_eu = dep("golem-us", "http://g1", kind="golem"), dep("golem-eu", "http://g2", kind="golem")
    modal, runpod = dep("modal-us", "http://m", kind="modal"), dep("runpod-eu", "http://r", kind="runpod")
    model = ModelConfig(id="m", name="m", deployments=(golem_us, golem_eu, modal, runpod))
    split = StrategyConfig("baseline-burst", "weighted", weights=(("golem", 70.0), ("modal", 15.0), ("runpod", 15.0)))
    assert [round(w, 6) for w in weighted(model, split)] == [0.35, 0.35, 0.15, 0.15]


def test_provider_share_follows_models_yaml_weights_and_names_take_their_own_entry() -> None:
    a, b = dep("golem-a", "http://g1", weight=3.0, kind="golem"), dep("golem-b", "http://g2", kind="golem")
    c, modal = dep("golem-c", "http://g3", kind="golem"), dep("modal-us", "http://m", kind="modal")
    model = ModelConfig(id="m", name="m", deployments=(a, b, c, modal))
    split = StrategyConfig("s", "weighted", weights=(("golem", 60.0), ("golem-c", 10.0), ("modal", 30.0)))
    # golem-c is named, so `golem` covers golem-a and golem-b only, split 3:1 by their models.yaml weights
    assert [round(w, 6) for w in weighted(model, split)] == [0.45, 0.15, 0.1, 0.3]


def test_equally_cheap_deployments_share_cost_traffic() -> None:
    one, two = dep("golem-us", "http://a", cost_per_second=0.0001), dep("golem-eu", "http://b", cost_per_second=0.0001)
    dear = dep("modal-us", "http://c", cost_per_second=0.0003)
    model = ModelConfig(id="m", name="m", deployments=(dear, one, two))
    assert cheapest_first(model, {}) == [0.0, 0.5, 0.5]
    # a measured latency does not hand one of them everything (the other would never be measured)
    assert cheapest_first(model, {one.key: Observed(20.0)}) == [0.0, 0.5, 0.5]
    heavier = replace(two, weight=3.0)
    shares = cheapest_first(replace(model, deployments=(dear, one, heavier)), {})
    assert shares == [0.0, 0.25, 0.75]


def test_a_group_keeps_its_share_when_one_member_is_down() -> None:
    golem_us, golem_eu = dep("golem-us", "http://g1", kind="golem"), dep("golem-eu", "http://g2", kind="golem")
    modal, runpod = dep("modal-us", "http://m", kind="modal"), dep("runpod-eu", "http://r", kind="runpod")
    split = StrategyConfig("burst", "weighted", weights=(("golem", 70.0), ("modal", 15.0), ("runpod", 15.0)))
    config = GatewayConfig(
        models=(ModelConfig(id="m", name="m", deployments=(golem_us, golem_eu, modal, runpod)),),
        routing=RoutingConfig(strategies=(split,), model_strategies=(("m", "burst"),)),
    )
    manager = RoutingManager(config)
    manager.set_available(golem_us.key, False, "health check failed")
    route = manager.route("m")
    assert route is not None
    assert [round(w, 6) for w in route.weights] == [0.0, 0.7, 0.15, 0.15]  # the other Golem node carries 70%
    assert [round(e.strategy_weight, 6) for e in route.entries] == [0.35, 0.35, 0.15, 0.15]  # as configured


def test_local_fraction_stays_with_the_local_side_when_one_gpu_is_down() -> None:
    second = dep("local-2", "http://gpu:8000/v1", kind="vllm")
    config = GatewayConfig(
        models=(ModelConfig(id="m", name="m", deployments=(LOCAL, second, REMOTE)),), routing=routing(0.8)
    )
    manager = RoutingManager(config)
    route = manager.route("m")
    assert route is not None and [round(w, 6) for w in route.weights] == [0.4, 0.4, 0.2]
    manager.set_available(LOCAL.key, False, "health check failed")
    route = manager.route("m")
    assert route is not None and [round(w, 6) for w in route.weights] == [0.0, 0.8, 0.2]


def test_cheapest_down_sends_cost_traffic_to_the_next_cheapest() -> None:
    cheap = dep("cheap", "http://a/v1", pricing=Pricing(prompt=0.1, completion=0.1))
    mid = dep("mid", "http://b/v1", pricing=Pricing(prompt=0.5, completion=0.5))
    dear = dep("dear", "http://c/v1", pricing=Pricing(prompt=1, completion=1))
    r = RoutingConfig(strategies=(StrategyConfig("c", "cost"),), model_strategies=(("m", "c"),))
    manager = RoutingManager(
        GatewayConfig(models=(ModelConfig(id="m", name="m", deployments=(dear, cheap, mid)),), routing=r)
    )
    manager.set_available(cheap.key, False, "circuit open")
    route = manager.route("m")
    assert route is not None and route.weights == [0.0, 0.0, 1.0]
