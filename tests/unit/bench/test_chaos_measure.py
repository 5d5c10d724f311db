"""The chaos harness's pure figures (bench/chaos_measure.py): adapt and recovery times, the phase summary, the
table. The harness itself runs real processes (`make chaos`) and is not part of `make test`."""

from __future__ import annotations

from bench.chaos_measure import (
    CallResult,
    Phase,
    RowSeen,
    adapt_time,
    markdown_table,
    missed_targets,
    recover_time,
    share,
    summarize,
    text_table,
)


def test_adapt_is_the_start_of_the_first_bin_from_which_the_share_stays_low() -> None:
    # inject at 10, heal at 15; a third of the calls hit the faulty deployment for 2 s, then none
    samples = [(10 + k * 0.1, k % 3 == 0 and k < 20) for k in range(50)]
    assert adapt_time(samples, baseline_share=1 / 3, inject=10, heal=15) == 2.0


def test_adapt_tolerates_a_trial_call_but_not_a_relapse() -> None:
    calm = [(10 + k * 0.1, False) for k in range(50)]
    one_trial = [*calm, (13.5, True)]  # 1 of 11 calls in that second: under a third of the baseline third
    assert adapt_time(one_trial, baseline_share=1 / 3, inject=10, heal=15) == 0.0
    relapse = [*calm, (14.2, True), (14.3, True), (14.4, True)]
    assert adapt_time(relapse, baseline_share=1 / 3, inject=10, heal=15) is None


def test_adapt_ignores_calls_outside_the_hold_and_counts_empty_bins_as_adapted() -> None:
    samples = [(9.9, True), (10.2, True), (15.5, True)]
    assert adapt_time(samples, baseline_share=0.5, inject=10, heal=15) == 1.0


def test_share_and_recover_time() -> None:
    samples = [(1.0, True), (1.5, False), (2.0, False), (3.0, True)]
    assert share(samples, 1.0, 2.5) == 1 / 3
    assert share(samples, 5.0, 6.0) == 0.0
    answers = [(9.0, "up-a"), (10.4, "up-b"), (10.7, "up-a"), (11.0, "up-a")]
    assert recover_time(answers, frozenset({"up-a"}), heal=10.0) == 0.7
    assert recover_time(answers, frozenset({"gpu-a"}), heal=10.0) is None


def _call(cid: str, start: float, ok: bool = True, deployment: str = "up-b", stream: bool = False) -> CallResult:
    return CallResult(cid, "m", stream, start, start + 0.3, 200 if ok else 0, ok, "" if ok else "reset", deployment)


def test_summarize_counts_forced_and_unforced_failures_and_missing_rows() -> None:
    phase = Phase("kill", window_start=0.0, inject_at=5.0, heal_at=8.0, window_end=12.0, model="m")
    phase.forced = lambda c: c.start <= 5.0 <= c.end
    phase.forced_missing = lambda c: c.start <= 5.0 <= c.end + 1.0
    calls = [
        _call("a", 1.0),
        _call("b", 4.8, ok=False),  # in flight at the kill: forced
        _call("c", 6.0, ok=False),  # after it: not forced
        _call("d", 4.5),  # ended 0.2 s before the kill, its row lost: excused
        _call("e", 9.0),  # row lost, not excused
        _call("z", 13.0, ok=False),  # another phase's call
        CallResult("s", "m", True, 7.0, 7.1, 200, False, "left on purpose", storm=True),
    ]
    rows = {c: RowSeen(c, 1.0, "up-b", 200, ("up-b",)) for c in ("a", "b", "c", "s")}
    report = summarize(phase, calls, rows)
    assert (report.calls, report.failed, report.forced, report.unforced) == (5, 2, 1, 1)
    assert (report.rows_missing, report.rows_missing_forced, report.unforced_missing) == (2, 1, 1)
    assert report.adapt_s is None and report.probes is None
    assert missed_targets(report) == ["1 client-visible failures the fault did not force", "1 calls without a row"]


def test_summarize_measures_adaptation_from_the_rows_first_attempts() -> None:
    phase = Phase("refuse", 0.0, 3.0, 6.0, 9.0, model="m", faulty=frozenset({"up-a"}))
    calls, rows = [], {}
    for k in range(90):
        t = k * 0.1
        first = "up-a" if k % 3 == 0 and not 4.0 <= t < 6.0 else "up-b"
        call = _call(f"c{k}", t, deployment=first if first == "up-b" or t >= 6.0 else "up-b")
        calls.append(call)
        rows[call.cid] = RowSeen(call.cid, t, call.deployment, 200, (first, "up-b") if first == "up-a" else (first,))
    report = summarize(phase, calls, rows)
    assert report.adapt_s == 1.0
    assert report.probes == 0
    assert report.recover_s == 0.0
    assert missed_targets(report, deployment_fault=True) == []
    assert missed_targets(report, adapt_target_s=0.5, deployment_fault=True) == ["adapt 1.00 s > 0.5 s"]


def test_tables_show_every_column_and_n_a_for_what_was_not_measured() -> None:
    phase = Phase("redis", 0.0, 1.0, 2.0, 3.0)
    report = summarize(phase, [_call("a", 0.5)], {"a": RowSeen("a", 0.5, "up-b", 200, ("up-b",))})
    md = markdown_table([report]).splitlines()
    assert md[0].startswith("| fault | calls | failed |") and md[1].startswith("|---|---:|")
    assert md[2] == "| redis | 1 | 0 | 0 | 0 | 0 | 0 | n/a | n/a | n/a |"
    text = text_table([report]).splitlines()
    assert text[0].split()[:3] == ["fault", "calls", "failed"] and text[2].split()[0] == "redis"


def test_a_rows_lost_figure_must_match_the_rows_missing() -> None:
    phase = Phase("disk", 0.0, 1.0, 2.0, 3.0, forced_missing=lambda c: True, rows_lost=1)
    calls = [_call("a", 0.5), _call("b", 1.5)]
    report = summarize(phase, calls, {"a": RowSeen("a", 0.5, "up-b", 200, ("up-b",))})
    assert (report.rows_missing, report.rows_missing_forced, report.rows_lost) == (1, 1, 1)
    assert missed_targets(report) == []
    honest_not = summarize(Phase("disk", 0.0, 1.0, 2.0, 3.0, rows_lost=0), calls, {})
    assert missed_targets(honest_not) == ["2 calls without a row", "rows_lost says 0, 2 rows are missing"]
