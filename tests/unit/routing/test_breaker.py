"""Circuit breaker state machine with an injected clock."""

from __future__ import annotations

import pytest

from routing.limits.breaker import BreakerBoard, BreakerConfig

K = "m/a"


def tripped(board: BreakerBoard, key: str, now: float, n: int = 3) -> None:
    for _ in range(n):
        board.record_failure(key, now)


def test_opens_after_consecutive_failures() -> None:
    board = BreakerBoard()
    board.record_failure(K, 0.0)
    board.record_failure(K, 0.1)
    assert board.available(K, 0.2)
    board.record_failure(K, 0.2)
    assert not board.available(K, 0.3)
    state = board.state(K, 0.3)
    assert (state.status, state.opened_at, state.until, state.consecutive_failures) == ("open", 0.2, 30.2, 3)


def test_success_resets_consecutive_count() -> None:
    board = BreakerBoard(BreakerConfig(min_calls=100))  # rate rule off: 2 of 3 calls fail
    for t in range(4):
        board.record_failure(K, t)
        board.record_failure(K, t + 0.5)
        board.record_success(K, t + 0.9)
    assert board.state(K, 5.0).status == "closed"


def test_opens_on_failure_rate_with_minimum_calls() -> None:
    board = BreakerBoard(BreakerConfig(consecutive_failures=100, min_calls=10, failure_rate=0.5))
    for i in range(9):  # alternating, never 2 failures in a row; 9 calls < min_calls
        (board.record_failure if i % 2 else board.record_success)(K, float(i))
    assert board.state(K, 9.0).status == "closed"
    board.record_failure(K, 9.0)  # 10 calls, 5 failures = 50 %
    state = board.state(K, 9.0)
    assert state.status == "open"
    assert (state.recent_calls, state.recent_failures, state.error_rate) == (10, 5, 0.5)


def test_old_calls_leave_the_window() -> None:
    board = BreakerBoard(BreakerConfig(consecutive_failures=100, min_calls=4, window=60.0))
    board.record_failure(K, 0.0)
    board.record_failure(K, 1.0)
    board.record_success(K, 2.0)
    board.record_failure(K, 100.0)  # the first three are out of the window now
    state = board.state(K, 100.0)
    assert state.status == "closed"
    assert (state.recent_calls, state.recent_failures) == (1, 1)


def test_half_open_admits_exactly_one_trial() -> None:
    board = BreakerBoard()
    tripped(board, K, 0.0)
    assert not board.try_acquire(K, 29.9)
    assert board.available(K, 30.0)
    assert board.try_acquire(K, 30.0)
    assert board.state(K, 30.0).status == "half_open"
    assert not board.try_acquire(K, 30.0)
    assert not board.available(K, 31.0)
    board.record_success(K, 31.0)
    state = board.state(K, 31.0)
    assert (state.status, state.consecutive_failures, state.recent_calls) == ("closed", 0, 0)
    assert board.try_acquire(K, 31.0) and board.try_acquire(K, 31.0)


def test_failed_trial_reopens_with_growing_capped_cooldown() -> None:
    board = BreakerBoard(BreakerConfig(cooldown=30.0, cooldown_growth=2.0, max_cooldown=100.0))
    tripped(board, K, 0.0)
    assert board.state(K, 0.0).until == 30.0
    assert board.try_acquire(K, 30.0)
    board.record_failure(K, 31.0)
    assert board.state(K, 31.0).until == 31.0 + 60.0
    assert board.try_acquire(K, 91.0)
    board.record_failure(K, 92.0)
    assert board.state(K, 92.0).until == 92.0 + 100.0  # 120 capped at 100
    assert board.state(K, 92.0).trips == 3


def test_trips_reset_after_a_quiet_window() -> None:
    board = BreakerBoard(BreakerConfig(cooldown=30.0, cooldown_growth=2.0, window=60.0))
    tripped(board, K, 0.0)
    board.try_acquire(K, 30.0)
    board.record_success(K, 30.0)
    tripped(board, K, 40.0)  # flapping: closed only 10 s, so the cooldown grows
    assert board.state(K, 40.0).until == 100.0
    board.try_acquire(K, 100.0)
    board.record_success(K, 100.0)
    tripped(board, K, 500.0)  # long quiet period: back to the base cooldown
    assert board.state(K, 500.0).until == 530.0


def test_lost_trial_expires() -> None:
    board = BreakerBoard(BreakerConfig(trial_timeout=10.0))
    tripped(board, K, 0.0)
    assert board.try_acquire(K, 30.0)
    assert not board.try_acquire(K, 39.0)
    assert board.try_acquire(K, 40.0)


def test_release_frees_the_trial() -> None:
    board = BreakerBoard()
    tripped(board, K, 0.0)
    assert board.try_acquire(K, 30.0)
    board.release(K)
    assert board.try_acquire(K, 30.1)


def test_late_results_while_open_change_nothing() -> None:
    board = BreakerBoard()
    tripped(board, K, 0.0)
    board.record_success(K, 1.0)
    board.record_failure(K, 2.0)
    state = board.state(K, 2.0)
    assert (state.status, state.until) == ("open", 30.0)


def test_retry_after_blocks_without_counting() -> None:
    board = BreakerBoard()
    board.record_failure(K, 0.0, retry_after=5.0, counts=False)
    state = board.state(K, 1.0)
    assert (state.status, state.consecutive_failures, state.available, state.blocked_until) == ("closed", 0, False, 5.0)
    assert not board.try_acquire(K, 4.9)
    assert board.try_acquire(K, 5.0)


def test_retry_after_with_a_counting_failure() -> None:
    board = BreakerBoard()
    board.record_failure(K, 0.0, retry_after=2.0)
    assert board.state(K, 0.0).consecutive_failures == 1
    assert not board.available(K, 1.0)
    assert board.available(K, 2.0)


def test_block_never_shortens() -> None:
    board = BreakerBoard()
    board.block_until(K, 50.0)
    board.block_until(K, 10.0)
    assert not board.available(K, 20.0)
    assert board.available(K, 50.0)


def test_block_outlasts_cooldown() -> None:
    board = BreakerBoard()
    tripped(board, K, 0.0)
    board.block_until(K, 45.0)
    assert not board.try_acquire(K, 30.0)
    assert board.try_acquire(K, 45.0)


def test_retry_after_is_capped() -> None:
    board = BreakerBoard(BreakerConfig(retry_after_cap=60.0))
    board.record_failure(K, 0.0, retry_after=1e12, counts=False)
    assert board.blocked(K, 0.0) == (60.0, 429)
    assert not board.available(K, 59.9)
    assert board.available(K, 60.0)
    assert BreakerConfig().retry_after_cap == 3600.0


def test_clear_blocks_lifts_retry_after_but_not_circuits() -> None:
    board = BreakerBoard()
    board.record_failure("m/a", 0.0, retry_after=100.0, counts=False, status=503)
    board.record_failure("m/b", 0.0, retry_after=1.0, counts=False)
    tripped(board, "m/c", 0.0)
    assert board.clear_blocks(5.0) == 1, "m/b's block had already run out"
    assert board.available("m/a", 5.0) and board.blocked("m/a", 5.0) is None
    assert not board.available("m/c", 5.0), "an open circuit keeps its cooldown"


def test_uncounted_failure_in_half_open_frees_the_trial() -> None:
    board = BreakerBoard()
    tripped(board, K, 0.0)
    assert board.try_acquire(K, 30.0)
    board.record_failure(K, 30.5, retry_after=1.0, counts=False)
    assert board.state(K, 30.5).status == "half_open"
    assert board.try_acquire(K, 31.5)


def test_state_defaults_to_last_seen_time_and_lists_all() -> None:
    board = BreakerBoard()
    board.record_failure("m/b", 3.0)
    board.record_success("m/a", 7.0)
    assert board.state("m/b").recent_calls == 1
    assert [s.key for s in board.states()] == ["m/a", "m/b"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"consecutive_failures": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"window": 0},
        {"cooldown_growth": 0.5},
        {"retry_after_cap": 0},
    ],
)
def test_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**kwargs)  # type: ignore[arg-type]
