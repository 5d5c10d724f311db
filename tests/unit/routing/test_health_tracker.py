"""Pure health state machine and probe-target computation."""

from __future__ import annotations

from typing import Any

import pytest

from routing.config.schema import DeploymentConfig
from routing.config.urls import origin, redact_url
from routing.upstream.health import HealthPolicy, HealthTracker, probe_target, probe_targets

K = "m/a"


def test_unknown_counts_as_healthy() -> None:
    tracker = HealthTracker()
    state = tracker.state(K)
    assert tracker.healthy(K) and state.healthy
    assert (state.status, state.last_check, state.consecutive_failures) == ("unknown", None, 0)


def test_first_success_is_healthy_without_a_change() -> None:
    tracker = HealthTracker()
    assert tracker.record_probe(K, True, 10.0) is False
    assert (tracker.state(K).status, tracker.state(K).last_check) == ("healthy", 10.0)


def test_two_failures_make_unhealthy_one_success_heals() -> None:
    tracker = HealthTracker()
    assert tracker.record_probe(K, True, 1.0) is False
    assert tracker.record_probe(K, False, 2.0, "HTTP 500") is False
    assert tracker.healthy(K)
    assert tracker.record_probe(K, False, 3.0, "connection failed") is True
    state = tracker.state(K)
    assert (state.healthy, state.status, state.last_error, state.consecutive_failures) == (
        False,
        "unhealthy",
        "connection failed",
        2,
    )
    assert tracker.record_probe(K, False, 4.0, "x") is False
    assert tracker.record_probe(K, True, 5.0) is True
    assert tracker.state(K).last_error == ""


def test_failures_from_unknown_use_the_same_threshold() -> None:
    tracker = HealthTracker()
    assert tracker.record_probe(K, False, 1.0, "HTTP 503") is False
    assert tracker.state(K).status == "unknown"
    assert tracker.record_probe(K, False, 2.0, "HTTP 503") is True


def test_configurable_thresholds() -> None:
    tracker = HealthTracker(HealthPolicy(unhealthy_after=1, healthy_after=3))
    assert tracker.record_probe(K, False, 1.0) is True
    assert tracker.record_probe(K, True, 2.0) is False
    assert tracker.record_probe(K, True, 3.0) is False
    assert tracker.record_probe(K, True, 4.0) is True
    with pytest.raises(ValueError):
        HealthPolicy(unhealthy_after=0)


def test_a_success_interrupts_the_failure_streak() -> None:
    tracker = HealthTracker()
    tracker.record_probe(K, False, 1.0)
    tracker.record_probe(K, True, 2.0)
    assert tracker.record_probe(K, False, 3.0) is False
    assert tracker.healthy(K)


def dep(kind: str, base_url: str, **kw: Any) -> DeploymentConfig:
    return DeploymentConfig(
        name="d", model_id="m", kind=kind, provider="p", base_url=base_url, provider_model_id="x", weight=1, **kw
    )


def test_vllm_probes_origin_health_without_auth() -> None:
    target = probe_target(dep("vllm", "http://10.0.0.5:8000/v1"), default_interval=10.0, timeout=2.0)
    assert target is not None
    assert (target.url, target.interval, target.timeout, target.headers) == (
        "http://10.0.0.5:8000/health",
        10.0,
        2.0,
        (),
    )


def test_hosted_probes_models_with_bearer() -> None:
    target = probe_target(dep("deepseek", "https://api.deepseek.com/v1/", api_key="sk-secret"), 30.0)
    assert target is not None
    assert target.url == "https://api.deepseek.com/v1/models"
    assert ("Authorization", "Bearer sk-secret") in target.headers
    assert "sk-secret" not in repr(target)


def test_health_path_overrides() -> None:
    relative = probe_target(dep("openai", "https://h.example/v1", health_path="ping"), 5.0)
    absolute = probe_target(dep("openai", "https://h.example/v1", health_path="/status"), 5.0)
    assert relative is not None and relative.url == "https://h.example/v1/ping"
    assert absolute is not None and absolute.url == "https://h.example/status"
    assert probe_target(dep("openai", "https://h.example/v1", health_path="none"), 5.0) is None


def test_not_probed() -> None:
    assert probe_target(dep("mock", "mock://local"), 5.0) is None
    assert probe_target(dep("openai", "https://h.example/v1"), 0.0) is None
    assert probe_target(dep("openai", "https://h.example/v1", health_interval=3.0), 0.0) is not None
    assert probe_targets([dep("openai", "https://h.example/v1", enabled=False)], 5.0) == []


def test_urls_are_redacted() -> None:
    url = "https://user:pw@h.example:8443/v1beta/openai?key=SECRET#frag"
    assert origin(url) == "https://h.example:8443"
    assert redact_url(url) == "https://h.example:8443/v1beta/openai"
    target = probe_target(dep("openai", "https://h.example/v1?key=SECRET"), 5.0)
    assert target is not None and "SECRET" not in target.display_url
