"""The load model: scraped queue plus calls sent since, unknown when stale or failed, hysteresis, priorities."""

from __future__ import annotations

from routing.config.schema import LocalFirstConfig
from routing.load import EngineSample, Load, ScrapeState, estimate, full_for, latch, learned_capacity

LIMITS = LocalFirstConfig(max_waiting=4, max_kv_usage=0.9, resume_below=0.5, scrape_interval=1.0)


def fresh(waiting: float, in_flight_at: int = 0, running: float = 2.0, kv: float = 0.1) -> ScrapeState:
    return ScrapeState(EngineSample(at=100.0, in_flight_at=in_flight_at, running=running, waiting=waiting, kv_usage=kv))


def test_calls_sent_since_the_scrape_count_as_queued() -> None:
    load = estimate(fresh(waiting=1, in_flight_at=2), in_flight=7, now=100.5, interval=1.0)
    assert load.known and load.waiting == 6 and load.score == 2 + 1 + 5


def test_calls_finished_since_the_scrape_shrink_the_estimate_but_not_below_zero() -> None:
    load = estimate(fresh(waiting=1, in_flight_at=5), in_flight=1, now=100.5, interval=1.0)
    assert load.waiting == 0.0


def test_a_stale_or_failed_scrape_is_unknown_and_falls_back_to_in_flight() -> None:
    stale = estimate(fresh(waiting=0), in_flight=3, now=104.0, interval=1.0)
    failed = estimate(ScrapeState(fresh(0).sample, error="HTTP 500"), in_flight=3, now=100.1, interval=1.0)
    never = estimate(None, in_flight=3, now=0.0, interval=1.0)
    for load in (stale, failed, never):
        assert not load.known and load.score == 3.0
        assert latch("", load, LIMITS) == ""  # unknown is not read as full, nor as empty: in-flight decides


def test_full_latches_until_load_is_under_resume_below() -> None:
    def at(waiting: float) -> Load:
        return estimate(fresh(waiting), 0, 100.0, 1.0)

    assert latch("", at(5), LIMITS) == "queue"
    assert latch("queue", at(3), LIMITS) == "queue"  # under the limit, not under half of it: still full
    assert latch("queue", at(2), LIMITS) == ""
    assert latch("", at(3), LIMITS) == ""
    assert latch("", estimate(fresh(0, kv=0.95), 0, 100.0, 1.0), LIMITS) == "kv"


def test_priorities_see_fullness_at_different_limits() -> None:
    load = estimate(fresh(3), 0, 100.0, 1.0)  # under the limit (4), over half of it
    assert [full_for("", load, LIMITS, p) for p in ("low", "normal", "high")] == ["queue", "", ""]
    busy = estimate(fresh(6), 0, 100.0, 1.0)  # over the limit, under twice it
    assert [full_for("queue", busy, LIMITS, p) for p in ("low", "normal", "high")] == ["queue", "queue", ""]
    assert full_for("queue", estimate(fresh(9), 0, 100.0, 1.0), LIMITS, "high") == "queue"


def test_once_the_batch_size_is_known_new_calls_fill_free_slots_before_they_queue() -> None:
    sample = EngineSample(at=100.0, in_flight_at=5, running=5, waiting=0)
    assert learned_capacity(None, sample) is None  # nothing waited: the batch size is not shown
    assert learned_capacity(None, EngineSample(at=1.0, in_flight_at=0, running=8, waiting=2)) == 8
    known = ScrapeState(sample, capacity=8)
    assert estimate(known, in_flight=9, now=100.1, interval=1.0).waiting == 1.0  # 4 sent, 3 free slots
    assert estimate(ScrapeState(sample), in_flight=9, now=100.1, interval=1.0).waiting == 4.0
