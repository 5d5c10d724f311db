"""The pure part of `make chaos`: what one call and one call-log row were, and the figures of one fault phase.

Times are wall-clock seconds (`time.time()`), the clock the call log's `timestamp` column uses too.

- *failed*: the client did not get a complete answer (not 200, transport error, a stream without `[DONE]` or
  with an error chunk).
- *forced*: a failure the fault could not avoid, per fault (`Phase.forced`, e.g. a stream already relaying from
  the upstream that stalled, a call in flight on a SIGKILLed worker); *unforced* = failed and not forced.
- *rows missing*: calls (started in the phase) without a row in PostgreSQL after the fleet drained; those the
  fault may excuse (a SIGKILLed worker's in-memory queue) are counted apart as *forced*.
- *adapt*: calls of the faulty model are put in 1 s bins by start time; the faulty deployments' share of a bin's
  first attempts is compared with their share before injection; routing adapted at the start of the first bin
  from which every bin up to the heal has at most a third of that share (None: it never held). A third, not
  zero: a circuit breaker's trial call (one per cooldown per worker) is not a failure to adapt; *probes* counts
  the calls that still went first to a faulty deployment after that point, before the heal.
- *recover*: seconds from the heal to the first call after it answered by a faulty deployment (None: none did).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class CallResult:
    """One call as its client saw it."""

    cid: str  # the call's unique id, sent as the body's `user` (the row's user_id)
    model: str
    stream: bool
    start: float
    end: float = 0.0
    status: int = 0
    ok: bool = False
    error: str = ""
    deployment: str = ""  # x-gateway-deployment of the answer, when headers came
    storm: bool = False  # a disconnect-storm call: its client left on purpose


@dataclass(frozen=True, slots=True)
class RowSeen:
    """The parts of one `api_logs` row the report uses."""

    cid: str
    at: float
    deployment: str
    status: int
    attempted: tuple[str, ...]  # the deployments of its attempts, in order


@dataclass(slots=True)
class Phase:
    """One fault: its window, when it was injected and healed, and what it may excuse."""

    name: str
    window_start: float
    inject_at: float
    heal_at: float
    window_end: float = 0.0
    model: str = ""  # the model whose routing is watched; "" when no deployment is faulty
    faulty: frozenset[str] = frozenset()
    forced: Callable[[CallResult], bool] = field(default=lambda call: False)
    forced_missing: Callable[[CallResult], bool] = field(default=lambda call: False)
    recovered_after: float | None = None  # set by faults that measure recovery themselves
    rows_lost: int | None = None  # what the gateways' gateway_call_log_rows_lost rose by, when the fault reads it
    notes: list[str] = field(default_factory=list)

    def holds(self, t: float) -> bool:
        return self.window_start <= t < self.window_end


@dataclass(frozen=True, slots=True)
class PhaseReport:
    name: str
    calls: int
    failed: int
    forced: int
    unforced: int
    rows_missing: int
    rows_missing_forced: int
    adapt_s: float | None
    recover_s: float | None
    notes: tuple[str, ...]
    probes: int | None = None
    rows_lost: int | None = None

    @property
    def unforced_missing(self) -> int:
        return self.rows_missing - self.rows_missing_forced


def adapt_time(
    samples: Iterable[tuple[float, bool]],
    baseline_share: float,
    inject: float,
    heal: float,
    bin_s: float = 1.0,
    ratio: float = 1 / 3,
) -> float | None:
    """Seconds from `inject` to the start of the first bin from which the faulty share stays at most
    `ratio * baseline_share` in every bin until `heal`. `samples` are (call start, first attempt on a faulty
    deployment); empty bins count as adapted. None when even the last bin is over the limit."""
    n = max(1, int((heal - inject) / bin_s))  # whole bins; a sliver before the heal is not one
    hits, totals = [0] * n, [0] * n
    for t, faulty in samples:
        if inject <= t < inject + n * bin_s:
            k = min(n - 1, int((t - inject) / bin_s))
            totals[k] += 1
            hits[k] += faulty
    limit = ratio * baseline_share
    adapted_from: int | None = None
    for k in range(n - 1, -1, -1):
        if totals[k] and hits[k] / totals[k] > limit:
            break
        adapted_from = k
    return None if adapted_from is None else round(adapted_from * bin_s, 3)


def share(samples: Iterable[tuple[float, bool]], start: float, end: float) -> float:
    """The faulty deployments' share of the calls started in [start, end)."""
    inside = [faulty for t, faulty in samples if start <= t < end]
    return sum(inside) / len(inside) if inside else 0.0


def recover_time(answers: Iterable[tuple[float, str]], faulty: frozenset[str], heal: float) -> float | None:
    """Seconds from `heal` to the first call started after it that a faulty deployment answered."""
    after = [t for t, deployment in answers if t >= heal and deployment in faulty]
    return round(min(after) - heal, 3) if after else None


def summarize(phase: Phase, calls: Sequence[CallResult], rows: dict[str, RowSeen]) -> PhaseReport:
    """The figures of one phase from every call of the run and every row found."""
    mine = [c for c in calls if phase.holds(c.start)]
    steady = [c for c in mine if not c.storm]
    failed = [c for c in steady if not c.ok]
    forced = [c for c in failed if phase.forced(c)]
    missing = [c for c in mine if c.cid not in rows]
    missing_forced = [c for c in missing if phase.forced_missing(c)]
    adapt = recover = None
    probes: int | None = None
    if phase.faulty:
        samples = [
            (c.start, bool(rows[c.cid].attempted) and rows[c.cid].attempted[0] in phase.faulty)
            for c in steady
            if c.model == phase.model and c.cid in rows
        ]
        base = share(samples, phase.window_start, phase.inject_at)
        adapt = adapt_time(samples, base, phase.inject_at, phase.heal_at) if base > 0 else None
        if adapt is not None:
            probes = sum(1 for t, hit in samples if hit and phase.inject_at + adapt <= t < phase.heal_at)
        answers = [(c.start, c.deployment) for c in steady if c.model == phase.model and c.ok]
        recover = recover_time(answers, phase.faulty, phase.heal_at)
    if phase.recovered_after is not None:
        recover = phase.recovered_after
    return PhaseReport(
        phase.name,
        len(steady),
        len(failed),
        len(forced),
        len(failed) - len(forced),
        len(missing),
        len(missing_forced),
        adapt,
        recover,
        tuple(phase.notes),
        probes,
        phase.rows_lost,
    )


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


HEADERS = (
    "fault",
    "calls",
    "failed",
    "forced",
    "unforced",
    "rows missing",
    "of which forced",
    "adapt s",
    "probes",
    "recover s",
)


def cells(report: PhaseReport) -> tuple[str, ...]:
    return (
        report.name,
        str(report.calls),
        str(report.failed),
        str(report.forced),
        str(report.unforced),
        str(report.rows_missing),
        str(report.rows_missing_forced),
        _s(report.adapt_s),
        "n/a" if report.probes is None else str(report.probes),
        _s(report.recover_s),
    )


def text_table(reports: Sequence[PhaseReport]) -> str:
    """A fixed-width table for the terminal."""
    rows = [HEADERS, *(cells(r) for r in reports)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(reports: Sequence[PhaseReport]) -> str:
    """The same table in Markdown, numbers right-aligned."""
    head = "| " + " | ".join(HEADERS) + " |"
    rule = "|---|" + "---:|" * (len(HEADERS) - 1)
    body = ["| " + " | ".join(cells(r)) + " |" for r in reports]
    return "\n".join([head, rule, *body])


def missed_targets(report: PhaseReport, adapt_target_s: float = 2.0, deployment_fault: bool = False) -> list[str]:
    """What this phase missed of the issue's targets, in words."""
    missed = []
    if report.unforced:
        missed.append(f"{report.unforced} client-visible failures the fault did not force")
    if report.unforced_missing:
        missed.append(f"{report.unforced_missing} calls without a row")
    if report.rows_lost is not None and report.rows_lost != report.rows_missing:
        missed.append(f"rows_lost says {report.rows_lost}, {report.rows_missing} rows are missing")
    if deployment_fault and (report.adapt_s is None or report.adapt_s > adapt_target_s):
        missed.append(f"adapt {_s(report.adapt_s)} s > {adapt_target_s:g} s")
    return missed
