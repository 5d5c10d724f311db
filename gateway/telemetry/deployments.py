"""Live state per deployment: health probes that steer routing weights, circuit breakers, in-flight counts.

Health flips go straight into the RoutingManager (weight 0 and renormalise), so /routing shows them at
once; circuit state is consulted per call by the executor and shown beside the weights.

With a `Fleet` (REDIS_URL) each deployment is probed and each metrics page scraped by one elected process, whose
results every process applies (`fleet.board` kinds "probe" and "scrape"), and circuit news from other processes
("circuit") is applied to this process's breakers: see routing/shared.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from gateway.telemetry.events import EventHub
from gateway.telemetry.metrics import Metrics
from routing.config.schema import DeploymentConfig
from routing.limits.admission import Guards
from routing.load import ScrapeState
from routing.manager import RoutingManager
from routing.shared.fleet import Fleet
from routing.upstream.health import HealthMonitor, probe_targets
from routing.upstream.scrape import Reading, Scraper, ScrapeTarget, scrape_targets
from routing.upstream.transport import HttpTransport

log = logging.getLogger("gateway.health")


class DeploymentState:
    """Owns the health monitor and reports health and circuit changes to routing and metrics."""

    def __init__(
        self,
        manager: RoutingManager,
        transport: HttpTransport,
        guards: Guards,
        metrics: Metrics,
        events: EventHub,
        fleet: Fleet | None = None,
    ) -> None:
        self.manager, self.transport, self.guards, self.metrics, self.events = (
            manager,
            transport,
            guards,
            metrics,
            events,
        )
        self.monitor: HealthMonitor | None = None
        self.scraper: Scraper | None = None
        self._restart: asyncio.Task[None] | None = None
        self.fleet = fleet
        if fleet is not None:
            fleet.board.on("circuit", self._fleet_circuit)
            fleet.board.on("block", self._fleet_block)  # an upstream's Retry-After, learnt by one process
            fleet.board.on("probe", self._fleet_probe)
            fleet.board.on("scrape", self._fleet_scrape)

    def shared_subjects(self) -> list[str]:
        """What this process reads from the fleet's board: its deployments and its scraped pages."""
        subjects = [d.key for d in self.manager.deployments()]
        if self.scraper is not None:
            subjects += [t.subject for t in self.scraper.targets]
        return subjects

    def _fleet_circuit(self, key: str, message: dict[str, Any]) -> None:
        if self.guards.adopt_circuit(key, message):
            self.circuit_changed(key)

    def _fleet_block(self, key: str, message: dict[str, Any]) -> None:
        self.guards.adopt_block(key, message)

    def _fleet_probe(self, key: str, message: dict[str, Any]) -> None:
        if self.monitor is not None:
            self.monitor.apply(key, bool(message.get("ok")), str(message.get("detail", "")), float(message["at"]))

    def _fleet_scrape(self, subject: str, message: dict[str, Any]) -> None:
        readings = message.get("readings")
        if self.scraper is not None and isinstance(readings, dict):
            self.scraper.apply(subject, {k: (str(v[0]), dict(v[1])) for k, v in readings.items()})

    def _publish_probe(self, key: str, ok: bool, detail: str, at: float) -> None:
        if self.fleet is not None and self.monitor is not None:
            target = self.monitor.targets[key]
            self.fleet.board.publish("probe", key, {"ok": ok, "detail": detail, "at": at}, 2 * target.interval + 5)

    def _publish_scrape(self, target: ScrapeTarget, readings: Mapping[str, Reading]) -> None:
        if self.fleet is not None and self.scraper is not None:
            data = {"readings": {k: [e, s] for k, (e, s) in readings.items()}}
            self.fleet.board.publish("scrape", target.subject, data, 2 * self.scraper.interval + 5)

    def _deployment(self, key: str) -> DeploymentConfig | None:
        for dep in self.manager.deployments():
            if dep.key == key:
                return dep
        return None

    async def start(self, previous: HealthMonitor | None = None, scraped: Scraper | None = None) -> None:
        """Start probing and scraping; after a reload, `previous` and `scraped` (the old, closed monitor and scraper)
        seed what is already known."""
        await self._start_scraper(scraped)
        routing = self.manager.config.routing
        targets = probe_targets(self.manager.deployments(), routing.health_check, routing.timeout or 5.0)
        if targets:
            fleet = self.fleet
            self.monitor = HealthMonitor(
                self.transport.get,
                targets,
                on_change=self._health_changed,
                on_pass=self._probe_passed,
                elect=fleet.leader.lead if fleet is not None else None,
                on_result=self._publish_probe if fleet is not None else None,
            )
            if previous is not None:
                self.monitor.carry_over(previous)
        self._sync_routing()
        if self.monitor is not None:
            await self.monitor.start()
            log.info("health checks: %d deployment(s) probed", len(targets))
        for dep in self.manager.deployments():
            self._publish(dep)

    def _sync_routing(self) -> None:
        # Only flips notify, so routing must already agree with the tracker: a deployment left down that the
        # tracker counts healthy (no longer probed, probe changed, state lost) would never be restored.
        for key in self.manager.unavailable():
            if self.monitor is None or self.monitor.healthy(key):
                self.manager.set_available(key, True)
        if self.monitor is not None:
            for key in self.monitor.targets:
                if not self.monitor.healthy(key):
                    detail = self.monitor.state(key).last_error
                    self.manager.set_available(key, False, f"health check failed: {detail}")

    async def _start_scraper(self, previous: Scraper | None) -> None:
        """Scrape the engine metrics of every deployment of a `local_first` model (the only reader of them)."""
        manager = self.manager
        deps = [
            d for m in manager.config.models if manager.strategy_for(m)[1].kind == "local_first" for d in m.deployments
        ]
        targets = scrape_targets(deps)
        if not targets:
            return
        lf = manager.config.routing.local_first
        self.scraper = Scraper(
            self.transport.get,
            targets,
            lf.scrape_interval,
            lf.scrape_timeout,
            self.guards.in_flight,
            on_scrape=self._scraped,
            elect=self.fleet.leader.lead if self.fleet is not None else None,
            on_result=self._publish_scrape if self.fleet is not None else None,
        )
        if previous is not None:
            self.scraper.carry_over(previous)
        await self.scraper.start()
        log.info("load scrape: %d metrics endpoint(s) every %gs", len(targets), lf.scrape_interval)

    def _scraped(self, dep: DeploymentConfig, state: ScrapeState) -> None:
        self.metrics.routing.scraped(dep, state)

    def scrape_state(self, key: str) -> ScrapeState | None:
        """The latest scrape of a deployment's engine metrics (None: not scraped)."""
        return self.scraper.state(key) if self.scraper is not None else None

    async def close(self) -> None:
        if self._restart is not None:
            await self._restart
        if self.scraper is not None:
            await self.scraper.close()
            self.scraper = None
        if self.monitor is not None:
            await self.monitor.close()
            self.monitor = None

    def restart_soon(self) -> None:
        """After a config reload: probe the new set of deployments."""

        earlier = self._restart

        async def restart() -> None:
            # Reloads queue up rather than cancel each other: a cancelled restart could lose the old health state.
            if earlier is not None:
                await asyncio.wait([earlier])
            previous, scraped = self.monitor, self.scraper
            if previous is not None:
                await previous.close()
            if scraped is not None:
                await scraped.close()
            self.monitor = self.scraper = None
            await self.start(previous, scraped)

        self._restart = asyncio.get_running_loop().create_task(restart())

    def _health_changed(self, key: str, healthy: bool, detail: str) -> None:
        self.manager.set_available(key, healthy, "" if healthy else f"health check failed: {detail}")
        log.warning(
            "deployment %s is %s%s", key, "healthy" if healthy else "UNHEALTHY", f" ({detail})" if detail else ""
        )
        dep = self._deployment(key)
        if dep is not None:
            self._publish(dep)
            self._announce(dep, "health", "healthy" if healthy else "unhealthy", detail)

    def _probe_passed(self, key: str) -> None:
        # the deployment answers its probe: an open circuit need not sit out its cooldown, its trial may run now
        if self.guards.breakers.probe_passed(key):
            self.circuit_changed(key)

    def circuit_changed(self, key: str) -> None:
        dep = self._deployment(key)
        if dep is not None:
            state = self.guards.breakers.state(key)
            log.warning("deployment %s circuit is %s", key, state.status)
            self._publish(dep)
            self._announce(dep, "circuit", state.status, "")

    def _announce(self, dep: DeploymentConfig, what: str, state: str, detail: str) -> None:
        self.events.publish(
            {
                "type": "provider_health",
                "provider": dep.name,
                "model": dep.model_id,
                "provider_type": dep.kind,
                "region": dep.region,
                "change": what,
                "state": state,
                "healthy": state in ("healthy", "closed"),
                "detail": detail,
                "timestamp": time.time(),
            }
        )

    def _publish(self, dep: DeploymentConfig) -> None:
        healthy = self.monitor.healthy(dep.key) if self.monitor is not None else True
        self.metrics.set_deployment_state(dep.model_id, dep.name, healthy, self.guards.breakers.state(dep.key).status)

    def describe(self, dep: DeploymentConfig) -> dict[str, Any]:
        """Health, circuit and load of one deployment, for /routing, /health and /providers.

        `available` is false while routing has the deployment down (health) or an upstream Retry-After blocks
        it (`blocked_for_s`, `blocked_status`, capped at RETRY_AFTER_CAP); an open circuit shows in `circuit`.
        """
        now = time.monotonic()
        breakers = self.guards.breakers
        breaker = breakers.state(dep.key, now)
        blocked = breakers.blocked(dep.key, now)
        down = self.manager.unavailable().get(dep.key, "")
        reason = down
        if blocked is not None and not down:
            reason = f"upstream answered HTTP {blocked[1]} with Retry-After: blocked for {blocked[0]:.0f}s"
        info: dict[str, Any] = {
            "available": not down and blocked is None,
            "reason": reason,
            "circuit": breaker.status,
            "circuit_cooling": breaker.status == "open" and now < (breaker.until or math.inf),
            "circuit_retry_in_s": round(max(0.0, (breaker.until or now) - now), 1) if breaker.status == "open" else 0,
            "blocked_for_s": round(blocked[0], 1) if blocked is not None else 0.0,
            "blocked_status": blocked[1] if blocked is not None else None,
            "recent_error_rate": round(breaker.error_rate, 3),
            "in_flight": self.guards.in_flight(dep.key),
            "health": "unknown",
            "last_health_check": None,
            "last_health_error": "",
        }
        if self.monitor is None or dep.key not in self.monitor.targets:
            info["health"] = "not probed"
            return info
        health = self.monitor.state(dep.key)
        info["health"] = health.status
        info["last_health_check"] = health.last_check
        info["last_health_error"] = health.last_error
        return info
