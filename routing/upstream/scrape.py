"""The load scraper: every `scrape_interval` seconds, GET each local engine's metrics page through the gateway's own
pool (`HttpTransport.get`, as health probes do), with a short timeout, in a background task per URL.

Several models served by one engine share its page: it is fetched once and read per deployment, for the series of
that deployment's upstream model. A failed, slow or unreadable scrape is recorded as such (the load model then
counts the deployment's load as unknown); it never leaves the last good figures looking current.

Across a fleet (`elect` and `on_result`, from routing/shared), each page is fetched by one elected process per
interval, which publishes what it read (per deployment: the load series or the error); the others `apply` that as
if they had fetched it, adding their own in-flight counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from routing.config.schema import DeploymentConfig
from routing.config.urls import redact_url
from routing.errors import UpstreamError
from routing.load import ScrapeState, learned_capacity
from routing.upstream.engine_metrics import parse_signals, sample_of
from routing.upstream.exchange import Get

log = logging.getLogger(__name__)

MAX_PAGE_BYTES = 8 * 1024 * 1024  # a vLLM page is ~100 KB; a runaway one must not be read without bound

Reading = tuple[str, dict[str, float]]  # (error, load series) of one deployment read from a page
Elect = Callable[[str, float], Awaitable[bool]]
OnResult = Callable[["ScrapeTarget", Mapping[str, Reading]], None]


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """One metrics URL and the deployments read from it."""

    url: str = field(repr=False)
    display_url: str
    deployments: tuple[DeploymentConfig, ...]

    @property
    def subject(self) -> str:
        """The page's name in shared state: a digest, since a metrics URL may hold a credential."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]


def scrape_targets(deployments: Sequence[DeploymentConfig]) -> list[ScrapeTarget]:
    """One target per distinct metrics URL among enabled deployments that have one."""
    by_url: dict[str, list[DeploymentConfig]] = {}
    for dep in deployments:
        if dep.enabled and dep.metrics_url:
            by_url.setdefault(dep.metrics_url, []).append(dep)
    return [ScrapeTarget(url, redact_url(url), tuple(deps)) for url, deps in by_url.items()]


class Scraper:
    """Scrapes each target in its own task; `states` holds what is known per deployment key.

    `in_flight(key)` is the gateway's own count, read when a page arrives, so the load model can add the calls
    sent since. `on_scrape(dep, state)` is told after each scrape (metrics). `clock` is monotonic time.
    """

    def __init__(
        self,
        get: Get,
        targets: Sequence[ScrapeTarget],
        interval: float,
        timeout: float,
        in_flight: Callable[[str], int],
        on_scrape: Callable[[DeploymentConfig, ScrapeState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        elect: Elect | None = None,
        on_result: OnResult | None = None,
    ) -> None:
        self._elect, self._on_result = elect, on_result
        self.fetches = 0  # pages this process fetched (the others' readings came through `apply`)
        self._get, self.targets, self.interval, self.timeout = get, list(targets), interval, timeout
        self._in_flight, self._on_scrape, self._clock = in_flight, on_scrape, clock
        self.states: dict[str, ScrapeState] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    def state(self, key: str) -> ScrapeState | None:
        return self.states.get(key)

    def carry_over(self, previous: Scraper) -> None:
        """After a reload: keep what was known of deployments still scraped at the same URL."""
        urls = {d.key: t.url for t in previous.targets for d in t.deployments}
        for target in self.targets:
            for dep in target.deployments:
                old = previous.states.get(dep.key)
                if old is not None and urls.get(dep.key) == target.url:
                    self.states[dep.key] = old

    async def start(self) -> None:
        if self._tasks or self.interval <= 0:
            return
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._loop(t), name=f"scrape:{t.display_url}") for t in self.targets]

    async def close(self) -> None:
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, target: ScrapeTarget) -> None:
        while not self._stop.is_set():
            began = self._clock()
            try:
                lease = 2 * self.interval + self.timeout
                if self._elect is None or await self._elect(f"scrape:{target.subject}", lease):
                    await self.scrape(target)
            except asyncio.CancelledError:
                raise
            except Exception:  # task boundary: one bad page or callback must not end the loop
                log.exception("scrape of %s crashed", target.display_url)
            pause = max(0.0, self.interval - (self._clock() - began))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)

    async def scrape(self, target: ScrapeTarget) -> None:
        """Fetch one page now and update every deployment read from it."""
        started = self._clock()
        error, text = "", ""
        try:
            status, _, body = await self._get(target.url, {}, self.timeout, MAX_PAGE_BYTES)
            if status != 200:
                error = f"HTTP {status}"
            else:
                text = body.decode("utf-8", "replace")
        except UpstreamError as exc:  # secret-free: it never holds the URL
            error = exc.message
        self.fetches += 1
        now = self._clock()
        readings = {dep.key: read_page(dep, error, text) for dep in target.deployments}
        if self._on_result is not None:
            self._on_result(target, readings)
        for dep in target.deployments:
            self._record(dep, *readings[dep.key], started, now)

    def apply(self, subject: str, readings: Mapping[str, Reading]) -> None:
        """Another process's reading of the page `subject` (its elected scraper's), recorded as if fetched here."""
        now = self._clock()
        for target in self.targets:
            if target.subject == subject:
                for dep in target.deployments:
                    if dep.key in readings:
                        self._record(dep, *readings[dep.key], now, now)

    def _record(self, dep: DeploymentConfig, error: str, signals: dict[str, float], started: float, now: float) -> None:
        old = self.states.get(dep.key, ScrapeState())
        if error:
            state = ScrapeState(old.sample, error, started, old.capacity)
        else:
            sample = sample_of(signals, now, self._in_flight(dep.key))
            state = ScrapeState(sample, "", started, learned_capacity(old.capacity, sample))
        if state.error and not old.error:
            log.warning("metrics of %s unavailable: %s; routing on in-flight counts", dep.key, state.error)
        self.states[dep.key] = state
        if self._on_scrape is not None:
            self._on_scrape(dep, state)


def read_page(dep: DeploymentConfig, error: str, text: str) -> Reading:
    """(error, load series) of `dep` from its engine's metrics page (pure): the fetch's error, a parse error, or the
    series of the deployment's upstream model."""
    if error:
        return error, {}
    try:
        signals = parse_signals(text, dep.engine, dep.provider_model_id)
    except ValueError as exc:
        return f"unreadable metrics page: {str(exc)[:80]}", {}
    if "waiting" not in signals and "kv_usage" not in signals:
        return f"no {dep.engine} load series for model {dep.provider_model_id!r}", {}
    return "", dict(signals)
