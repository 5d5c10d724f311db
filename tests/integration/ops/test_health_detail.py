"""Public /health gives status and counts; deployment names and hosts need admin access (issue 19 item 5)."""

from __future__ import annotations

import httpx

from tests.conftest import GatewayFactory

HOST = "gpu-node-7.internal.corp"
MODELS = {
    "models": [
        {
            "id": "m",
            "route": [
                {"kind": "mock", "name": "mock-1"},
                {"kind": "vllm", "name": f"local@{HOST}:8000", "base_url": f"http://{HOST}:8000/v1", "weight": 0},
                {"kind": "deepseek", "name": "ds-off"},  # no key: disabled, with a reason
            ],
        }
    ]
}


def test_public_health_names_no_deployment_or_host(gateway_factory: GatewayFactory) -> None:
    """The audit read `local@gpu-node-7.internal.corp:8000` from /health without any key."""
    gw = gateway_factory(MODELS, {"health_check": 0}, ADMIN_API_KEY="sk-admin-123456")
    anyone = httpx.get(f"{gw.url}/health")
    assert anyone.status_code == 200
    assert HOST not in anyone.text and "mock-1" not in anyone.text and "ds-off" not in anyone.text
    body = anyone.json()
    assert body["status"] in ("healthy", "degraded") and body["providers_total"] == 3
    assert body["models"]["m"]["deployments_total"] == 3 and "deployments" not in body["models"]["m"]
    assert "disabled_deployments" not in body
    wrong = httpx.get(f"{gw.url}/health", headers={"Authorization": "Bearer sk-not-the-admin"})
    assert wrong.status_code == 200 and HOST not in wrong.text
    admin = httpx.get(f"{gw.url}/health", headers={"Authorization": "Bearer sk-admin-123456"})
    assert admin.status_code == 200 and HOST in admin.text
    names = [d["deployment"] for d in admin.json()["models"]["m"]["deployments"]]
    assert names == ["mock-1", f"local@{HOST}:8000", "ds-off"]
    assert admin.json()["disabled_deployments"][0]["deployment"] == "ds-off"


def test_keyless_admin_on_loopback_still_reads_the_detail(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MODELS, {"health_check": 0})  # HOST=127.0.0.1, no ADMIN_API_KEY: the operator's host
    assert HOST in httpx.get(f"{gw.url}/health").text
    proxied = httpx.get(f"{gw.url}/health", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 200 and HOST not in proxied.text
