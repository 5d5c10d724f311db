"""The pure `local_first` plan: power of two choices among local deployments with room, spill in weight order,
fallback when nothing local can serve, priorities and the budget, affinity order with bounded load."""

from __future__ import annotations

from routing.config.schema import DeploymentConfig
from routing.load import Load
from routing.local_first import Candidate, plan


def dep(name: str) -> DeploymentConfig:
    return DeploymentConfig(name, "m", "vllm", "local", f"http://{name}", "m", 1.0)


A, B, C, CLOUD1, CLOUD2 = (dep(n) for n in ("a", "b", "c", "cloud1", "cloud2"))


def cand(d: DeploymentConfig, score: float, full: str = "", usable: bool = True) -> Candidate:
    return Candidate(d, Load(known=True, in_flight=0, score=score), full, usable)


def names(p: object) -> list[str]:
    return [d.name for d in p.order]  # type: ignore[attr-defined]


def test_two_choices_take_the_less_loaded_of_the_pair_drawn() -> None:
    locals_ = [cand(A, 5), cand(B, 1), cand(C, 3)]
    p = plan(locals_, [CLOUD1], "normal", True, None, (0.0, 0.0))  # draws a, then b
    assert (names(p), p.reason) == (["b", "c", "a", "cloud1"], "local")
    p = plan(locals_, [CLOUD1], "normal", True, None, (0.0, 0.99))  # draws a, then c
    assert names(p)[0] == "c"


def test_full_local_deployments_spill_to_remote_ones_in_order_then_serve_as_last_resort() -> None:
    locals_ = [cand(A, 9, "queue"), cand(B, 7, "kv")]
    p = plan(locals_, [CLOUD1, CLOUD2], "normal", True, None, (0.5, 0.5))
    assert (names(p), p.reason) == (["cloud1", "cloud2", "b", "a"], "spill:kv")


def test_nothing_local_usable_is_a_fallback_and_full_without_remotes_stays_local() -> None:
    down = [cand(A, 0, usable=False)]
    assert plan(down, [CLOUD1], "normal", True, None, (0, 0)).reason == "fallback"
    assert names(plan([cand(A, 9, "queue")], [], "normal", True, None, (0, 0))) == ["a"]


def test_over_budget_low_priority_holds_normal_queues_locally_high_spills() -> None:
    locals_ = [cand(A, 9, "queue")]
    low = plan(locals_, [CLOUD1], "low", False, None, (0, 0))
    normal = plan(locals_, [CLOUD1], "normal", False, None, (0, 0))
    high = plan(locals_, [CLOUD1], "high", False, None, (0, 0))
    assert (low.hold, names(low)) == (True, ["a"])
    assert (normal.hold, names(normal), normal.reason) == (False, ["a", "cloud1"], "local")
    assert (high.hold, names(high), high.reason) == (False, ["cloud1", "a"], "spill:queue")


def test_affinity_takes_the_first_replica_in_hash_order_with_room() -> None:
    locals_ = [cand(A, 0), cand(B, 5), cand(C, 0)]
    hit = plan(locals_, [CLOUD1], "normal", True, [1, 2, 0], (0, 0))
    assert (names(hit)[0], hit.reason, hit.affinity) == ("b", "affinity", "hit")
    locals_[1] = cand(B, 9, "queue")
    over = plan(locals_, [CLOUD1], "normal", True, [1, 2, 0], (0, 0))
    assert (names(over)[0], over.affinity) == ("c", "overflow")
