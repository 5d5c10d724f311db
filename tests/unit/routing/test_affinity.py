"""Affinity keys and rendezvous order."""

from __future__ import annotations

from routing.affinity import affinity_key, rendezvous

LONG = "You are a careful assistant. " * 100  # 2,900 characters


def test_the_session_wins_then_prompt_cache_key_then_user_then_a_long_prefix() -> None:
    body = {"prompt_cache_key": "pk", "user": "u", "messages": [{"role": "system", "content": LONG}]}
    assert affinity_key("s1", body, 2000) == "s:s1"
    assert affinity_key("", body, 2000) == "p:pk"
    assert affinity_key("", {**body, "prompt_cache_key": ""}, 2000) == "u:u"
    prefix = affinity_key("", {"messages": body["messages"]}, 2000)
    later_turn = {"messages": [*body["messages"], {"role": "user", "content": "and then?"}]}
    assert prefix.startswith("p:") and affinity_key("", later_turn, 2000) == prefix


def test_a_short_prompt_or_prefix_chars_zero_has_no_key() -> None:
    assert affinity_key("", {"messages": [{"role": "user", "content": "Ping"}]}, 2000) == ""
    assert affinity_key("", {"messages": [{"role": "system", "content": LONG}]}, 0) == ""


def test_rendezvous_moves_only_the_keys_of_a_removed_replica() -> None:
    names = ["a", "b", "c", "d"]
    keys = [f"s:{i}" for i in range(400)]
    before = {k: names[rendezvous(k, names)[0]] for k in keys}
    assert {n: list(before.values()).count(n) for n in names}.keys() == set(names)
    after = {k: ["a", "b", "d"][rendezvous(k, ["a", "b", "d"])[0]] for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != "c")
