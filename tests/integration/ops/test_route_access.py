"""Access is declared on every route, and a route that declares none cannot join the app (deny by default)."""

from __future__ import annotations

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import gateway.app
from gateway.access import Access
from gateway.app import create_app
from gateway.routes import GuardedRoute, GuardedWebSocketRoute
from gateway.settings import Settings
from tests.conftest import GatewayFactory

MOCK = {"models": [{"id": "mock", "route": [{"kind": "mock"}]}]}
CLIENT_KEY, ADMIN_KEY = "sk-client-123456789", "sk-admin-987654321"
# the dashboard's assets hold no data, and its sign-in must be reachable before one is signed in
PUBLIC = {"/health", "/ready", "/maps/api.js", "/monitoring/static/{path:path}", "/monitoring/session"}
ADMIN = {
    *("/routing", "/admin/routing", "/stats", "/admin/stats", "/api/v1/generation"),
    *("/monitoring/dashboard.html", "/dashboard", "/monitoring/state"),
}


def test_every_route_carries_an_access_level() -> None:
    app = create_app(Settings.from_env({}), own_logging=False)
    levels = {}
    for route in app.routes:
        assert isinstance(route, GuardedRoute | GuardedWebSocketRoute), route
        assert isinstance(route.access, Access)
        levels.setdefault(route.path, set()).add(route.access)
    assert {path for path, level in levels.items() if level == {Access.PUBLIC}} == PUBLIC
    assert {path for path, level in levels.items() if level == {Access.ADMIN}} == ADMIN
    assert levels["/metrics"] == {Access.METRICS}
    assert all(level == {Access.CLIENT} for path, level in levels.items() if path not in PUBLIC | ADMIN | {"/metrics"})


def test_a_route_without_an_access_level_stops_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    declared = gateway.app.routes

    def with_a_plain_route() -> list:
        return [*declared(), Route("/new-thing", lambda request: PlainTextResponse("open?"))]

    monkeypatch.setattr(gateway.app, "routes", with_a_plain_route)
    with pytest.raises(RuntimeError, match="/new-thing"):
        create_app(Settings.from_env({}), own_logging=False)


def test_each_level_through_real_sockets(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(MOCK, GATEWAY_API_KEYS=CLIENT_KEY, ADMIN_API_KEY=ADMIN_KEY)
    client = {"Authorization": f"Bearer {CLIENT_KEY}"}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert httpx.get(f"{gw.url}/health").status_code == 200
    assert httpx.get(f"{gw.url}/ready").status_code == 200
    assert httpx.get(f"{gw.url}/v1/models").status_code == 401
    assert httpx.get(f"{gw.url}/v1/models", headers=client).status_code == 200
    assert httpx.get(f"{gw.url}/routing", headers=client).status_code == 403
    assert httpx.get(f"{gw.url}/routing", headers=admin).status_code == 200
    assert httpx.get(f"{gw.url}/metrics", headers=client).status_code == 403
    assert httpx.get(f"{gw.url}/metrics", headers=admin).status_code == 200
    unknown = httpx.get(f"{gw.url}/v1/no-such-route", headers=client)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("word", ["on", "yes", "1", "true"])
def test_metrics_public_reads_every_true_word(gateway_factory: GatewayFactory, word: str) -> None:
    # METRICS_PUBLIC=on used to mean false (one of three boolean parsers) while OFFLOAD=on meant true
    gw = gateway_factory(MOCK, ADMIN_API_KEY=ADMIN_KEY, METRICS_PUBLIC=word)
    assert httpx.get(f"{gw.url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200
    assert httpx.get(f"{gw.url}/routing", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401


def test_offload_reads_the_same_words(gateway_factory: GatewayFactory) -> None:
    local = {"kind": "openai", "name": "gpu", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}
    models = {"models": [{"id": "m", "route": [local, {"kind": "mock", "name": "cloud"}]}]}
    gw = gateway_factory(models, OFFLOAD="on", LOCAL_BASE_URL="http://127.0.0.1:9")
    rows = httpx.get(f"{gw.url}/routing").json()["models"]["m"]["deployments"]
    assert [row["deployment"] for row in rows] == ["cloud"]
