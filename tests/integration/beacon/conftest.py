"""The Beacon fleet the tests route across: two Golem nodes, Modal and RunPod, each on its own loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.beacon_upstreams import FakeGolem, FakeModal, FakeRunPod


@pytest.fixture
def fleet() -> Iterator[dict[str, Any]]:
    with (
        FakeGolem.in_thread("golem-us", "us-east") as golem_us,
        FakeGolem.in_thread("golem-eu", "eu-west") as golem_eu,
        FakeModal.in_thread("modal-us", "us-east") as modal,
        FakeRunPod.in_thread("runpod-eu", "eu-west", api_key="rp-secret-key", endpoint_id="ep1") as runpod,
    ):
        yield {"golem-us": golem_us, "golem-eu": golem_eu, "modal-us": modal, "runpod-eu": runpod}
