"""The load model of a local deployment, pure: a scraped engine sample plus the gateway's own in-flight count in,
an estimate of its queue and whether it is full out.

A scrape is up to a scrape interval old; the in-flight count is instant. The estimate adds to the scraped queue
the calls this gateway sent since that scrape, net of the ones that finished (`in_flight - in_flight_at`), so a
burst cannot overrun a GPU between two scrapes; once the engine has been seen saturated (requests waiting), its
batch size is known and new calls fill the free running slots before they count as queued. A failed or stale
scrape is *unknown*: the estimate falls back to the in-flight count alone and never reads a missing figure as
zero load.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.config.schema import LocalFirstConfig

STALE_AFTER_INTERVALS = 3.0  # a sample older than this many scrape intervals is unknown ...
STALE_SLACK = 1.0  # ... and than one interval plus this many seconds (a busy loop's timer jitter at short intervals)
PRIORITIES = ("high", "normal", "low")
# How far past the limits a call of each priority still counts a deployment as having room: low-priority calls
# spill first (at half the limits), high-priority ones stay local longest (at twice the limits).
_HEADROOM = {"low": 0.5, "normal": 1.0, "high": 2.0}


@dataclass(frozen=True, slots=True)
class EngineSample:
    """One successful scrape of an engine's metrics (None: the engine does not export that figure)."""

    at: float  # monotonic time the scrape answered
    in_flight_at: int  # the gateway's in-flight calls to the deployment at that moment
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None  # 0-1
    prefix_hits: float | None = None  # cumulative counters (vLLM): their ratio is the prefix-cache hit rate
    prefix_queries: float | None = None


@dataclass(frozen=True, slots=True)
class ScrapeState:
    """What the scraper knows of a deployment: the last good sample, and whether the latest scrape failed."""

    sample: EngineSample | None = None
    error: str = ""  # the latest scrape's failure, "" when it succeeded
    last_attempt: float | None = None
    capacity: float | None = None  # the most requests seen running while others waited: the engine's batch size


def learned_capacity(previous: float | None, sample: EngineSample) -> float | None:
    """The batch size the engine has shown: the most requests running in any sample that had some waiting."""
    if sample.waiting and sample.running:
        return max(previous or 0.0, sample.running)
    return previous


@dataclass(frozen=True, slots=True)
class Load:
    """A deployment's load now. `known` is False when the scrape failed or is stale (then only in-flight counts)."""

    known: bool
    in_flight: int
    waiting: float = 0.0  # estimated queue: scraped waiting + net calls sent since the scrape
    kv_usage: float = 0.0
    score: float = 0.0  # what "least loaded" compares: estimated running + waiting (in-flight when unknown)
    age: float | None = None  # seconds since the sample used (None: no sample)


def estimate(state: ScrapeState | None, in_flight: int, now: float, interval: float) -> Load:
    """The load of one deployment from its scrape state and the gateway's in-flight count."""
    sample = state.sample if state is not None else None
    age = None if sample is None else max(0.0, now - sample.at)
    stale_after = max(STALE_AFTER_INTERVALS * interval, interval + STALE_SLACK)
    if sample is None or state is None or state.error or age is None or age > stale_after:
        return Load(known=False, in_flight=in_flight, score=float(in_flight), age=age)
    sent = in_flight - sample.in_flight_at
    running = sample.running if sample.running is not None else float(sample.in_flight_at)
    free = max(0.0, state.capacity - running) if state.capacity is not None else 0.0
    waiting = max(0.0, (sample.waiting or 0.0) + sent - free)
    score = max(0.0, running + (sample.waiting or 0.0) + sent)
    return Load(True, in_flight, waiting, sample.kv_usage or 0.0, score, age)


def headroom(priority: str) -> float:
    return _HEADROOM.get(priority, 1.0)


def kv_limit(limits: LocalFirstConfig, factor: float) -> float:
    """The KV-cache limit scaled by a priority's headroom: the free part shrinks or grows, never past 100%."""
    return 1.0 - (1.0 - limits.max_kv_usage) / factor


def over(load: Load, limits: LocalFirstConfig, factor: float = 1.0) -> str:
    """Why the deployment is past the limits scaled by factor: `queue`, `kv`, or "" (room, or unknown load)."""
    if not load.known:
        return ""
    if load.waiting > limits.max_waiting * factor:
        return "queue"
    if load.kv_usage > kv_limit(limits, factor):
        return "kv"
    return ""


def resumed(load: Load, limits: LocalFirstConfig) -> bool:
    """Back under `resume_below` of both limits (or unknown): a latched-full deployment takes calls again."""
    if not load.known:
        return True
    return load.waiting <= limits.max_waiting * limits.resume_below and load.kv_usage <= (
        limits.max_kv_usage * limits.resume_below
    )


def latch(previous: str, load: Load, limits: LocalFirstConfig) -> str:
    """Hysteresis of "full" at the normal limits: full from above the limits until back under resume_below.

    Returns the reason it is full (`queue`/`kv`) or "" when it has room; `previous` is the last verdict.
    """
    now_over = over(load, limits)
    if now_over:
        return now_over
    if previous and not resumed(load, limits):
        return previous
    return ""


def full_for(latched: str, load: Load, limits: LocalFirstConfig, priority: str) -> str:
    """Whether a call of this priority sees the deployment full: high-priority calls look only at twice the limits,
    the others at the latched verdict, low-priority ones also at half the limits."""
    if priority == "high":
        return over(load, limits, headroom("high"))
    if latched:
        return latched
    return over(load, limits, headroom("low")) if priority == "low" else ""
