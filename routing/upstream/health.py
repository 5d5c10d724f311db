"""Active health checks: a pure tracker (probe results in, health out) and a loop that feeds it through the pool.

What is probed (see `probe_target`): local vLLM by `GET {origin}/health`; hosted APIs by a cheap authenticated
`GET {base_url}/models`; `health_path` overrides per deployment (relative to base_url, "/abs" relative to the
origin, "none" disables); in-process kinds (mock) are never probed. Healthy = 2xx (redirects are not followed).
A deployment turns unhealthy after `unhealthy_after` consecutive failed probes (default 2, so one lost packet does
not pull it) and healthy again after `healthy_after` consecutive successes (default 1). Until its first probe
completes it counts as healthy, with status "unknown"; after a config reload a deployment probed at the same URL
keeps its known state (`carry_over`). Keys never appear in URLs shown, logs or errors.

Across a fleet (`elect` and `on_result`, from routing/shared): before each probe a process asks to lead that
deployment's probing; the leader probes and publishes the result, the others skip the probe and `apply` the
leader's results as they arrive, so the fleet probes each deployment once per interval and all agree on its health.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from adapters.kinds import kind_spec
from routing.config.schema import DeploymentConfig
from routing.config.urls import origin, redact_url
from routing.errors import UpstreamError
from routing.upstream.exchange import Get

log = logging.getLogger(__name__)

HealthStatus = Literal["unknown", "healthy", "unhealthy"]
OnChange = Callable[[str, bool, str], Awaitable[None] | None]
OnPass = Callable[[str], None]
Elect = Callable[[str, float], Awaitable[bool]]
OnResult = Callable[[str, bool, str, float], None]


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """How many consecutive probe results flip a deployment's health."""

    unhealthy_after: int = 2
    healthy_after: int = 1

    def __post_init__(self) -> None:
        if self.unhealthy_after < 1 or self.healthy_after < 1:
            raise ValueError("HealthPolicy thresholds must be >= 1")


@dataclass(frozen=True, slots=True)
class HealthState:
    """One deployment's health for display. `last_check` is unix time; `last_error` is short and secret-free."""

    key: str
    healthy: bool
    status: HealthStatus
    last_check: float | None
    last_error: str
    consecutive_failures: int
    consecutive_successes: int


@dataclass(slots=True)
class _Entry:
    status: HealthStatus = "unknown"
    last_check: float | None = None
    last_error: str = ""
    failures: int = 0
    successes: int = 0


class HealthTracker:
    """Pure health state machine per deployment key."""

    def __init__(self, policy: HealthPolicy | None = None) -> None:
        self.policy = policy or HealthPolicy()
        self._entries: dict[str, _Entry] = {}

    def record_probe(self, key: str, ok: bool, now: float, detail: str = "") -> bool:
        """Record one probe result; True when the deployment's healthy flag changed."""
        entry = self._entries.setdefault(key, _Entry())
        was_healthy = entry.status != "unhealthy"
        entry.last_check = now
        if ok:
            entry.successes, entry.failures, entry.last_error = entry.successes + 1, 0, ""
            if entry.status == "unknown" or entry.successes >= self.policy.healthy_after:
                entry.status = "healthy"
        else:
            entry.failures, entry.successes, entry.last_error = entry.failures + 1, 0, detail
            if entry.failures >= self.policy.unhealthy_after:
                entry.status = "unhealthy"
        return was_healthy != (entry.status != "unhealthy")

    def carry_over(self, previous: HealthTracker, keys: Iterable[str]) -> None:
        """Start from what `previous` knew of `keys` (a config reload), so a recovery is still seen as a flip."""
        for key in keys:
            entry = previous._entries.get(key)
            if entry is not None:
                self._entries[key] = replace(entry)

    def healthy(self, key: str) -> bool:
        """Whether traffic may go to the deployment (unknown counts as healthy)."""
        entry = self._entries.get(key)
        return entry is None or entry.status != "unhealthy"

    def state(self, key: str) -> HealthState:
        entry = self._entries.get(key) or _Entry()
        return HealthState(
            key=key,
            healthy=entry.status != "unhealthy",
            status=entry.status,
            last_check=entry.last_check,
            last_error=entry.last_error,
            consecutive_failures=entry.failures,
            consecutive_successes=entry.successes,
        )


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One deployment's probe: URL and headers (secret, never shown), the URL to show, and the cadence."""

    key: str
    url: str = field(repr=False)
    display_url: str
    interval: float
    timeout: float
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


def probe_url(base_url: str, path: str, at_origin: bool) -> str:
    """The probe URL: a full URL as given; "/abs" paths and `at_origin` kinds relative to the origin; others
    relative to base_url."""
    if path.startswith(("http://", "https://")):
        return path
    if path.startswith("/"):
        return origin(base_url) + path
    root = origin(base_url) if at_origin else base_url.split("?", 1)[0].rstrip("/")
    return f"{root}/{path}"


def probe_target(dep: DeploymentConfig, default_interval: float, timeout: float = 5.0) -> ProbeTarget | None:
    """The probe for a deployment, or None when it is not probed (in process, health_path "none", interval 0);
    its `health_timeout` and `health_check` override the defaults given."""
    spec = kind_spec(dep.kind)
    if spec is not None and (spec.in_process or (not spec.health_path and not dep.health_path)):
        return None
    path = dep.health_path or (spec.health_path if spec is not None else "models")
    interval = dep.health_interval or default_interval
    if path.strip().lower() == "none" or interval <= 0 or not dep.base_url.startswith(("http://", "https://")):
        return None
    url = probe_url(dep.base_url, path, spec.health_at_origin if spec is not None else False)
    headers = list(dep.headers)
    if dep.api_key:
        headers.append(("Authorization", f"Bearer {dep.api_key}"))
    return ProbeTarget(dep.key, url, redact_url(url), interval, dep.health_timeout or timeout, tuple(headers))


def probe_targets(
    deployments: Sequence[DeploymentConfig], default_interval: float, timeout: float = 5.0
) -> list[ProbeTarget]:
    """Probes for every enabled deployment that has one."""
    targets = (probe_target(d, default_interval, timeout) for d in deployments if d.enabled)
    return [t for t in targets if t is not None]


class HealthMonitor:
    """Probes each target every `interval` seconds in its own task and reports flips to `on_change`.

    `get` makes the probe request: `HttpTransport.get`, so probes share the calls' pool (owned by the transport).
    """

    def __init__(
        self,
        get: Get,
        targets: Sequence[ProbeTarget],
        on_change: OnChange | None = None,
        *,
        on_pass: OnPass | None = None,
        policy: HealthPolicy | None = None,
        clock: Callable[[], float] = time.time,
        elect: Elect | None = None,
        on_result: OnResult | None = None,
    ) -> None:
        self._get = get
        self._elect, self._on_result = elect, on_result
        self.probes = 0  # probes this process made (the others' results came through `apply`)
        self.targets = {t.key: t for t in targets}
        self._on_change, self._on_pass = on_change, on_pass
        self.tracker = HealthTracker(policy)
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._applying: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()

    def carry_over(self, previous: HealthMonitor) -> None:
        """Keep `previous`'s health of deployments probed the same way; a changed probe URL starts unknown."""
        same = [k for k, t in self.targets.items() if k in previous.targets and previous.targets[k].url == t.url]
        self.tracker.carry_over(previous.tracker, same)

    async def start(self) -> None:
        """Start one probe loop per target; each probes at once, then every interval."""
        if self._tasks:
            return
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self._loop(t), name=f"health:{t.key}") for t in self.targets.values() if t.interval > 0
        ]

    async def close(self) -> None:
        """Cancel and await every probe loop."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, target: ProbeTarget) -> None:
        # The stop event, not only cancel(), ends the loop: a cancel() that lands just as a probe's own timeout
        # fires can be taken for that timeout.
        while not self._stop.is_set():
            try:
                # the lease outlives two intervals: a leader that died is replaced within about that long
                lease = 2 * target.interval + target.timeout
                if self._elect is None or await self._elect(f"probe:{target.key}", lease):
                    await self.check(target.key)
            except asyncio.CancelledError:
                raise
            except Exception:  # task boundary: one bad probe or callback must not end the loop
                log.exception("health probe of %s crashed", target.key)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), target.interval)

    async def check(self, key: str) -> bool:
        """Probe one deployment now, record the result, and notify on a flip; returns the probe's outcome."""
        ok, detail = await self._probe(self.targets[key])
        self.probes += 1
        now = self._clock()
        if self._on_result is not None:
            self._on_result(key, ok, detail, now)
        await self._record(key, ok, detail, now)
        return ok

    def apply(self, key: str, ok: bool, detail: str, at: float) -> None:
        """Another process's probe result for `key` (its leader's): recorded as if probed here."""
        if key not in self.targets:
            return
        task = asyncio.get_running_loop().create_task(self._record(key, ok, detail, at))
        self._applying.add(task)
        task.add_done_callback(self._applying.discard)

    async def _record(self, key: str, ok: bool, detail: str, now: float) -> None:
        target = self.targets[key]
        changed = self.tracker.record_probe(key, ok, now, detail)
        if ok and self._on_pass is not None:
            self._on_pass(key)  # every pass, not only a flip: an open circuit may wait for it
        if changed:
            healthy = self.tracker.healthy(key)
            log.log(
                logging.INFO if healthy else logging.WARNING,
                "deployment %s is now %s (%s%s)",
                key,
                "healthy" if healthy else "unhealthy",
                target.display_url,
                f": {detail}" if detail else "",
            )
            if self._on_change is not None:
                result = self._on_change(key, healthy, detail)
                if inspect.isawaitable(result):
                    await result

    async def check_all(self) -> None:
        """Probe every target once, concurrently."""
        await asyncio.gather(*(self.check(key) for key in self.targets))

    async def _probe(self, target: ProbeTarget) -> tuple[bool, str]:
        try:
            status, _, _ = await self._get(target.url, dict(target.headers), target.timeout, 0)
        except UpstreamError as exc:  # its message is secret-free: it never holds the URL or headers
            return False, exc.message
        if 200 <= status < 300:
            return True, ""
        return False, f"HTTP {status}"

    def healthy(self, key: str) -> bool:
        """Whether traffic may go to the deployment (unprobed and unknown count as healthy)."""
        return self.tracker.healthy(key)

    def state(self, key: str) -> HealthState:
        return self.tracker.state(key)

    def states(self) -> list[HealthState]:
        return [self.tracker.state(key) for key in sorted(self.targets)]
