"""The spill budget's sliding hour, on an injected clock."""

from __future__ import annotations

from routing.budget import SpendWindow


def test_spend_counts_for_an_hour_then_drops_out() -> None:
    window = SpendWindow(limit=1.0)
    window.add(0.0, 0.6)
    window.add(1800.0, 0.6)
    assert not window.left(1800.0) and round(window.used(1800.0), 3) == 1.2
    assert window.left(3600.0) and round(window.spent(3600.0), 3) == 0.6  # the first entry is an hour old
    assert window.spent(5400.0) == 0.0


def test_no_cap_is_always_left_and_a_zero_cap_never_is() -> None:
    assert SpendWindow(None).left(0.0) and SpendWindow(None).used(0.0) == 0.0
    assert not SpendWindow(0.0).left(0.0) and SpendWindow(0.0).used(0.0) == 1.0


def test_a_new_cap_keeps_what_was_spent() -> None:
    window = SpendWindow(limit=1.0)
    window.add(10.0, 0.8)
    assert not window.with_limit(0.5).left(20.0)
