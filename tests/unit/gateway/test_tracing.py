"""When the gateway traces, and the low-cardinality names its spans carry."""

from __future__ import annotations

import pytest

from gateway.envvars import SettingsError
from gateway.telemetry.otel import error_type, provider_name
from gateway.telemetry.tracing import start_tracing, traces_endpoint


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({}, ""),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:9/x"}, "http://c:9/x"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, ""),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, ""),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, ""),
    ],
)
def test_the_sdks_own_variables_turn_tracing_on(env: dict[str, str], endpoint: str) -> None:
    assert traces_endpoint(env) == endpoint


def test_off_builds_nothing() -> None:
    assert start_tracing({}) is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL='grpc'"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY='soon'"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "-5"}, "OTEL_BSP_SCHEDULE_DELAY='-5'"),
        ({"OTEL_SDK_DISABLED": "maybe"}, "OTEL_SDK_DISABLED='maybe'"),
    ],
)
def test_a_bad_variable_stops_start_up_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match="Fix:") as refused:
        start_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", **env})
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("outcome", "status", "kind"),
    [
        ("error", 500, "500"),
        ("rate_limited", 429, "429"),
        ("client_error", 400, "400"),
        ("timeout", None, "timeout"),
        ("timeout", 200, "timeout"),  # a stream that went quiet after its headers
        ("cancelled", None, "cancelled"),
        ("error", None, "_OTHER"),
    ],
)
def test_error_type(outcome: str, status: int | None, kind: str) -> None:
    assert error_type(outcome, status) == kind


def test_provider_names_take_the_conventions_well_known_values() -> None:
    assert [provider_name(p) for p in ("gemini", "openai", "deepseek", "local")] == [
        "gcp.gemini",
        "openai",
        "deepseek",
        "local",
    ]
