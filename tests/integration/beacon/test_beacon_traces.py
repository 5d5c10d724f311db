"""Beacon's /inference is traced by the same hooks as the OpenAI surfaces: a call span, an attempt span, and the
attempt's traceparent at the Golem node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.integration.beacon.test_beacon_api import execute_via_router, fleet_config
from tests.support.otlp_receiver import OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def test_an_inference_call_and_its_attempt(gateway_factory: GatewayFactory, fleet: dict[str, Any], receiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    gw = gateway_factory(fleet_config(fleet), **env)
    status, body = execute_via_router(gw.url, {"model": "llama3.2-1b", "prompt": "hi", "region_preference": "us-east"})
    assert status == 200 and body["provider_used"] == "golem-us", body
    spans = receiver.wait_for(lambda s: len(s) >= 2)
    (call,) = [s for s in spans if s.kind == "server"]
    (attempt,) = [s for s in spans if s.kind == "client"]
    assert call.name == "chat llama3.2-1b" and call.attributes["gen_ai.provider.name"] == "golem"
    assert attempt.attributes["gateway.deployment"] == "golem-us" and attempt.parent_span_id == call.span_id
    sent = fleet["golem-us"].requests[-1].headers["traceparent"]
    assert sent.split("-")[1:3] == [call.trace_id, attempt.span_id]
