"""Who receives which live event: call events by API key name, health events for everyone."""

from __future__ import annotations

import asyncio

from gateway.calllog.record import CallRecord
from gateway.telemetry.events import EventHub, call_event


def _record(key_name: str) -> CallRecord:
    return CallRecord("gen-1", 0.0, "m", "p", "d", False, 200, 1.0, api_key_name=key_name)


def _drain(queue: asyncio.Queue[dict[str, object]]) -> list[dict[str, object]]:
    return [queue.get_nowait() for _ in range(queue.qsize())]


def test_call_events_go_to_their_key_and_to_those_who_see_all() -> None:
    hub = EventHub()
    alice, bob, admin = hub.subscribe("alice"), hub.subscribe("bob"), hub.subscribe("admin", sees_all=True)
    hub.publish(call_event(_record("alice")), owner="alice")
    hub.publish({"type": "provider_health"})
    assert [e["type"] for e in _drain(alice.queue)] == ["call_completed", "provider_health"]
    assert [e["type"] for e in _drain(bob.queue)] == ["provider_health"]
    assert [e["type"] for e in _drain(admin.queue)] == ["call_completed", "provider_health"]


def test_a_call_event_names_no_key() -> None:
    event = call_event(_record("alice"))
    assert "alice" not in str(event) and not any("key" in name for name in event)
