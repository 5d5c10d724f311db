"""HealthMonitor over an injected `get` (what HttpTransport.get does on sockets): no sockets, no pool."""

from __future__ import annotations

from collections.abc import Mapping

from routing.config.schema import DeploymentConfig
from routing.errors import UpstreamError
from routing.upstream.health import HealthMonitor, HealthPolicy, ProbeTarget, probe_target


class FakeGet:
    """Answers each probe with the next outcome: a status, or an UpstreamError to raise."""

    def __init__(self, *outcomes: int | UpstreamError) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, dict[str, str], float, int]] = []

    async def __call__(
        self, url: str, headers: Mapping[str, str], total_timeout: float, max_bytes: int
    ) -> tuple[int, Mapping[str, str], bytes]:
        self.calls.append((url, dict(headers), total_timeout, max_bytes))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, UpstreamError):
            raise outcome
        return outcome, {}, b""


def target() -> ProbeTarget:
    return ProbeTarget("m/a", "http://a/health", "http://a/health", 60.0, 1.5, (("Authorization", "Bearer k"),))


async def test_statuses_and_errors_become_probe_results() -> None:
    get = FakeGet(204, 500, UpstreamError("timeout", "timeout after 1.5s"), 200)
    changes: list[tuple[str, bool, str]] = []
    monitor = HealthMonitor(get, [target()], lambda k, h, d: changes.append((k, h, d)), policy=HealthPolicy(2, 1))
    assert await monitor.check("m/a")
    assert not await monitor.check("m/a") and monitor.healthy("m/a")
    assert not await monitor.check("m/a") and not monitor.healthy("m/a")
    assert monitor.state("m/a").last_error == "timeout after 1.5s"
    assert await monitor.check("m/a")
    assert changes == [("m/a", False, "timeout after 1.5s"), ("m/a", True, "")]
    # status only: the probe asks for no body, with the target's headers and its own timeout
    assert get.calls[0] == ("http://a/health", {"Authorization": "Bearer k"}, 1.5, 0)


def test_in_process_kinds_are_never_probed() -> None:
    mock = DeploymentConfig(
        name="m", model_id="m", kind="mock", provider="mock", base_url="mock://local", provider_model_id="m",
        weight=1, health_path="models", health_interval=1.0,
    )  # fmt: skip
    assert probe_target(mock, 1.0) is None  # even with a health_path: nothing to probe in process
