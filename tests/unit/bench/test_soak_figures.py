"""The soak's pure figures (bench/soak.py): growth after warm-up, the ASCII curve, the verdict."""

from __future__ import annotations

from bench.soak import Sample, curve, flatness, verdict


def _samples(rss: list[float], fds: list[int]) -> list[Sample]:
    return [
        Sample(float(k), k * 1000, (r / 2, r / 2), (f // 2, f - f // 2))
        for k, (r, f) in enumerate(zip(rss, fds, strict=True))
    ]


def test_growth_is_measured_from_the_end_of_warm_up() -> None:
    # warm-up grows from 60 to 100 MiB; after it, a 3 MiB wobble
    samples = _samples([60, 80, 100, 101, 103, 100, 102, 101, 100, 102], [30, 34, 36, 36, 37, 36, 36, 36, 36, 36])
    assert flatness(samples) == (3.0, 1)


def test_a_leak_shows_and_a_replaced_worker_is_skipped() -> None:
    leak = _samples([100 + 5 * k for k in range(10)], [36] * 10)
    assert flatness(leak) == (35.0, 0)
    replaced = [*_samples([100] * 5, [36] * 5), Sample(5.0, 5000, (50.0,), (18,))]
    assert flatness(replaced) == (0.0, 0)


def test_curve_has_one_line_per_sample_at_most_lines_max() -> None:
    samples = _samples([100 + (k % 3) for k in range(100)], [36] * 100)
    lines = curve(samples, lines_max=10).splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("   99,000 calls")
    assert curve([]) == ""


def test_verdict_names_each_failure() -> None:
    good = {"calls": 10, "rows": 10, "distinct_ids": 10, "errors": 0, "rss_growth_mib": 1.0, "fd_growth": 0}
    assert verdict(good, rss_slack=20, fd_slack=8) == []
    bad = {**good, "rows": 9, "errors": 2, "rss_growth_mib": 25.0, "fd_growth": 9}
    assert verdict(bad, rss_slack=20, fd_slack=8) == [
        "2 errors",
        "9 rows (10 distinct) for 10 calls",
        "RSS grew 25.0 MiB after warm-up (slack 20)",
        "open fds grew by 9 after warm-up (slack 8)",
    ]
