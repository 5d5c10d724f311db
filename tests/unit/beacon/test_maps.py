"""The Maps proxy's query normalisation and its cache-miss budget, with an injected clock."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from gateway.beacon import maps
from gateway.beacon.maps import MissBudget, client_query
from gateway.errors import APIError


def _query(text: str) -> tuple[tuple[str, str], ...]:
    return client_query(Request({"type": "http", "query_string": text.encode(), "headers": []}))


def test_only_bootstrap_parameters_survive_sorted_and_deduplicated() -> None:
    assert _query("v=weekly&key=k&libraries=places,marker,places&foo=1&callback=init&callback=second") == (
        ("callback", "init"),
        ("libraries", "marker,places"),
        ("v", "weekly"),
    )
    assert _query("") == (("libraries", "geometry"),)
    assert _query("libraries=&region=GB") == (("libraries", "geometry"), ("region", "GB"))


@pytest.mark.parametrize("bad", ["callback=a;b", "v=" + "1" * 17, "language=en%20GB", "map_ids=a,,b", "loading=ASYNC"])
def test_a_malformed_parameter_is_named(bad: str) -> None:
    with pytest.raises(APIError) as refused:
        _query(bad)
    assert refused.value.status == 400 and refused.value.param == bad.split("=")[0]


def test_budget_per_client_and_in_all() -> None:
    budget = MissBudget(per_client=2, total=3, window=60.0)
    assert budget.take("a", 0.0) == 0 and budget.take("a", 1.0) == 0
    assert budget.take("a", 2.0) == pytest.approx(58.0)  # until a's first fetch leaves the window
    assert budget.take("b", 3.0) == 0
    assert budget.take("c", 4.0) == pytest.approx(56.0)  # all three fetches of the minute are spent
    assert budget.take("a", 60.0) == 0, "the window slid past a's first fetch"


def test_the_integration_tests_use_the_real_budget() -> None:
    from tests.integration.beacon import test_maps_budget

    assert (test_maps_budget.MISSES_PER_CLIENT, test_maps_budget.MISSES_TOTAL) == (
        maps.MISSES_PER_CLIENT,
        maps.MISSES_TOTAL,
    )
    assert maps.MISS_WINDOW_S == 60.0
