"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright (its node driver comes with the
wheel; no browser is downloaded). Signs in, sends traffic through the gateway, watches the numbers and charts
move, kills an upstream and watches its deployment turn unhealthy, and finds no console error.

Set DASHBOARD_SCREENSHOT=<path> to also save the screenshot there (how docs/dashboard.png is made).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import IN_CI, GatewayFactory
from tests.integration.routing.hybrid import hybrid_config
from tests.support.upstream import FakeUpstream
from tests.support.vllm_twin import TwinSpec, VllmTwin

CHROMIUM = "/usr/bin/chromium"
ADMIN = "sk-admin-browser-0123456789"
CLIENT = "key-ops-secret"
TIMEOUT_MS = 15_000

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    if IN_CI:
        pytest.fail("chromium is required in CI (scripts/ensure_services.sh installs it)", pytrace=False)
    pytest.skip(
        "chromium is not installed (Debian's `chromium`; set CI=1 to make this a failure)", allow_module_level=True
    )

from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright  # noqa: E402


def config(local: FakeUpstream, hosted: FakeUpstream) -> dict[str, Any]:
    priced = {"pricing": {"prompt": "0.5", "completion": "1.5"}}
    return {
        "models": [
            {
                "id": "llama-3.3-70b",
                **priced,
                "route": [
                    {"kind": "vllm", "name": "gpu-1", "base_url": local.base_url, "region": "eu-local", "weight": 0.7},
                    {
                        "kind": "openai",
                        "name": "hosted",
                        "base_url": hosted.base_url,
                        "api_key": "sk-upstream-secret",
                        "region": "us-east",
                        "weight": 0.3,
                        "health_path": "none",
                    },
                ],
            },
            {"id": "mock-small", "route": [{"kind": "mock", "name": "mock-1", "region": "in-process"}]},
        ]
    }


@pytest.fixture
def browser_page() -> Iterator[Page]:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            yield page
        finally:
            browser.close()


class Traffic:
    """Calls through the gateway from a background thread until stopped, a few of them failing."""

    def __init__(self, url: str, models: tuple[str, str] = ("llama-3.3-70b", "mock-small")) -> None:
        self.client = openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT, max_retries=0, timeout=10)
        self.models = models
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def one(self, i: int) -> None:
        model = self.models[1] if i % 3 == 2 else self.models[0]
        extra: dict[str, Any] = {}
        if (
            i % 8 == 3 and model != self.models[1]
        ):  # the upstream refuses the request: a client error, relayed, never retried
            extra = {"x_test": {"*": {"status": 400}}}
        messages = [{"role": "user", "content": f"hello {i}"}]
        try:
            if i % 2 == 0:
                with self.client.chat.completions.create(
                    model=model, messages=messages, stream=True, extra_body=extra
                ) as stream:
                    for _ in stream:
                        pass
            else:
                self.client.chat.completions.create(model=model, messages=messages, extra_body=extra)
        except openai.APIStatusError as exc:
            assert exc.status_code == 400, exc  # only the refusals asked for
        except openai.APIConnectionError:
            pass  # a call in flight when the test stops an upstream
        self.sent += 1

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            self.one(i)
            i += 1
            self.stop.wait(0.05)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=20)
        self.client.close()


def screenshot(page: Page, directory: Path) -> Path:
    shot = directory / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"dashboard screenshot: {shot}")
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, os.environ["DASHBOARD_SCREENSHOT"])
    return shot


def sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/dashboard")
    page.fill("#admin-key", ADMIN)
    page.click("#sign-in-form button")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)


def number(page: Page, element_id: str) -> float:
    text = page.locator(f"#{element_id}").inner_text().strip()
    return float(text) if text not in ("", "-") else 0.0


def test_the_dashboard_signs_in_shows_traffic_and_an_upstream_going_down(
    gateway_factory: GatewayFactory, browser_page: Page, tmp_path: Path
) -> None:
    page = browser_page
    with FakeUpstream.in_thread("gpu-1") as local, FakeUpstream.in_thread("hosted") as hosted:
        gw = gateway_factory(
            config(local, hosted),
            {"health_check": 0.2, "timeout": 2},
            ADMIN_API_KEY=ADMIN,
            GATEWAY_API_KEYS=f"ops:{CLIENT}",
        )
        console: list[ConsoleMessage] = []
        page.on("console", lambda m: console.append(m) if m.type == "error" else None)
        page_errors: list[Exception] = []
        page.on("pageerror", lambda e: page_errors.append(e))

        # sign in: a wrong key first
        page.goto(f"{gw.url}/dashboard")
        expect(page.locator("#sign-in-form")).to_be_visible()
        page.fill("#admin-key", "sk-wrong-key")
        page.click("#sign-in-form button")
        expect(page.locator("#sign-in-message")).to_have_text("this key may not use admin routes")
        expect(page.locator("#deployments")).to_be_hidden()
        # what the browser said so far is the two refusals it was meant to get: the signed-out page and the key
        refused = sorted(m.location.get("url", "").removeprefix(gw.url) for m in console)
        assert refused == ["/dashboard", "/monitoring/session"], [m.text for m in console]
        console.clear()

        page.fill("#admin-key", ADMIN)
        page.click("#sign-in-form button")
        expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
        expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["gateway_session"]["httpOnly"] and cookies["gateway_session"]["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == "", "the session cookie must be out of the page's reach"

        rows = page.locator("#deployments tbody tr")
        expect(rows).to_have_count(3, timeout=TIMEOUT_MS)
        gpu = page.locator('#deployments tr[data-deployment="gpu-1"]')
        expect(gpu).to_have_attribute("data-health", "healthy", timeout=TIMEOUT_MS)
        expect(gpu).to_contain_text("eu-local")
        assert number(page, "t-calls") == 0

        with Traffic(gw.url) as traffic:
            page.wait_for_function(
                "() => Number(document.getElementById('t-calls').textContent) >= 15", timeout=TIMEOUT_MS
            )
            expect(page.locator("#last-calls tbody tr").first).to_be_visible()
            page.wait_for_function(
                "() => gatewayDashboard.charts.rate.data[1].some(v => v > 0)"
                " && gatewayDashboard.charts.latency.data[2].some(v => v > 0)",
                timeout=TIMEOUT_MS,
            )
            expect(page.locator("#errors tbody")).to_contain_text("bad_request", timeout=TIMEOUT_MS)
            expect(page.locator('#providers tr[data-provider="openai"]')).to_be_visible()
            assert page.locator("#t-success").inner_text().endswith("%")
            cost = page.locator('#providers tr[data-provider="local"] td').nth(2).inner_text()
            assert cost.startswith("$") and cost != "$0", cost

            # kill the local upstream: its probes fail and the page hears it over /ws
            local.stop_sync()
            expect(gpu).to_have_attribute("data-health", "unhealthy", timeout=TIMEOUT_MS)
            expect(gpu).to_have_class("down")
            expect(page.locator('#health-events li[data-deployment="gpu-1"]').first).to_contain_text("unhealthy")
            before = number(page, "t-calls")
            page.wait_for_function(
                f"() => Number(document.getElementById('t-calls').textContent) > {before}", timeout=TIMEOUT_MS
            )
            page.wait_for_timeout(2500)  # one more refresh of the charts under load before the picture
            shot = screenshot(page, tmp_path)
            assert traffic.sent > 15

        assert not page_errors, page_errors
        assert not console, [f"{m.text} at {m.location}" for m in console]
        assert shot.stat().st_size > 10_000

        # sign out: the page is back to its form and the session no longer opens /stats
        console_before = len(console)
        page.click("#sign-out")
        expect(page.locator("#sign-in-form")).to_be_visible(timeout=TIMEOUT_MS)
        assert "gateway_session" not in {c["name"] for c in page.context.cookies()}
        assert len(console) - console_before <= 1  # the signed-out page answers 401, nothing else


def test_the_dashboard_shows_engine_load_and_the_spill_under_load(
    gateway_factory: GatewayFactory, browser_page: Page, tmp_path: Path
) -> None:
    """A local_first model on a vLLM twin with a hosted fallback: the twin's scraped queue and KV cache show in
    its row; when its queue is full the model spills, and the spill budget fills."""
    page = browser_page
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    with (
        VllmTwin.in_thread("gpu-a", TwinSpec(model="tiny", capacity=4)) as twin,
        FakeUpstream.in_thread("cloud") as cloud,
    ):
        models, routing = hybrid_config([twin], [cloud], max_waiting=4, spill_budget_usd_per_hour=5.0)
        models["models"].append({"id": "mock-small", "route": [{"kind": "mock", "name": "mock-1"}]})
        gw = gateway_factory(models, routing, ADMIN_API_KEY=ADMIN, GATEWAY_API_KEYS=f"ops:{CLIENT}")
        sign_in(page, gw.url)
        errors.clear()  # the signed-out page's 401 came before
        gpu = page.locator('#deployments tr[data-deployment="gpu-a"]')
        expect(gpu).to_contain_text("run 0", timeout=TIMEOUT_MS)  # scraped from the twin's /metrics
        with Traffic(gw.url, models=("m", "mock-small")):
            expect(page.locator('#models tr[data-model="m"]')).to_contain_text("no")
            twin.override(waiting=9)  # the engine reports a full queue: local_first spills to the cloud
            expect(gpu).to_contain_text("wait 9", timeout=TIMEOUT_MS)
            expect(gpu).to_contain_text("FULL (queue)")
            expect(page.locator('#models tr[data-model="m"]')).to_contain_text("since", timeout=TIMEOUT_MS)
            expect(page.locator("#spill")).to_contain_text("spilling since")
            page.wait_for_function(
                "() => !document.getElementById('t-spill').textContent.startsWith('$0 of')", timeout=TIMEOUT_MS
            )
            assert page.locator("#t-spill").inner_text().endswith("of $5.0000")
            cloud_cost = page.locator('#deployments tr[data-deployment="cloud"] td').last
            expect(cloud_cost).not_to_have_text("$0")
            expect(cloud_cost).not_to_have_text("-")
            page.wait_for_timeout(2500)
            shot = screenshot(page, tmp_path)
    assert shot.stat().st_size > 10_000
    assert not errors, errors
