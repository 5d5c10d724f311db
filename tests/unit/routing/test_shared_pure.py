"""The pure parts of shared state: breakers adopting the fleet's word, a page read once and applied elsewhere, rate
limits failing over to this process while the link is down, and the start-up warning's arithmetic."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis.asyncio import Redis

from gateway.cli import per_worker_warning
from gateway.settings import Settings
from routing.config.schema import DeploymentConfig
from routing.limits.admission import Guards
from routing.limits.breaker import BreakerBoard, BreakerConfig
from routing.limits.ratelimit import Denial, InProcessRateLimiter, model_limit
from routing.limits.ratelimit_redis import RedisRateLimiter
from routing.shared.link import SharedLink
from routing.shared.ratelimit import FailoverRateLimiter, LocalReservation, RateLimitsUnavailable
from routing.upstream.scrape import Reading, Scraper, ScrapeTarget, read_page
from tests.unit.routing.test_engine_metrics import VLLM_PAGE

DEAD_REDIS = "redis://127.0.0.1:1/0"  # never contacted: a link that was never started is down


def test_an_adopted_opening_blocks_for_the_cooldown_left_and_an_adopted_close_clears_it() -> None:
    board = BreakerBoard(BreakerConfig(cooldown=30))
    assert board.adopt("m/a", "open", 100.0, cooldown=12.0, trips=2)
    assert not board.available("m/a", 111.9)
    assert board.available("m/a", 112.0)  # the opener's cooldown, not a fresh 30 s
    assert board.state("m/a", 100.0).trips == 2
    assert board.adopt("m/a", "closed", 101.0)
    assert board.status("m/a") == "closed" and board.available("m/a", 101.0)
    assert not board.adopt("m/a", "closed", 102.0)  # no change, no news


def test_a_lost_trial_keeps_the_breaker_busy_until_the_winners_verdict() -> None:
    board = BreakerBoard(BreakerConfig(cooldown=1, trial_timeout=60))
    board.adopt("m/a", "open", 0.0, cooldown=1.0)
    assert board.try_acquire("m/a", 2.0)  # half_open: this process would run the trial...
    # ...but another process holds the fleet's token: nothing is given back, so no second local trial runs
    assert not board.available("m/a", 3.0)
    assert board.adopt("m/a", "closed", 4.0)  # the winner's trial succeeded
    assert board.available("m/a", 4.0)


def test_guards_ignore_an_opening_whose_cooldown_is_over() -> None:
    guards = Guards(BreakerBoard(), InProcessRateLimiter())
    assert not guards.adopt_circuit("m/a", {"status": "open", "until": time.time() - 1})
    assert guards.adopt_circuit("m/a", {"status": "open", "until": time.time() + 30, "trips": 1})
    assert guards.breakers.status("m/a") == "open"
    assert not guards.adopt_circuit("m/a", {"status": "bogus"})


DEP = DeploymentConfig("gpu", "m", "vllm", "local", "http://gpu:8000/v1", "tiny-llama", 1.0, metrics_url="http://x/m")


def test_read_page_gives_the_series_or_the_reason() -> None:
    error, signals = read_page(DEP, "", VLLM_PAGE)
    assert error == "" and signals["waiting"] == 3.0 and signals["running"] == 3.0
    assert read_page(DEP, "HTTP 500", "") == ("HTTP 500", {})
    other = replace(DEP, provider_model_id="absent")
    assert read_page(other, "", VLLM_PAGE)[0] == "no vllm load series for model 'absent'"


async def test_a_reading_published_by_the_leader_is_applied_like_a_fetch() -> None:
    async def get(url: str, headers: dict[str, str], wait: float, limit: int) -> tuple[int, Any, bytes]:
        return 200, {}, VLLM_PAGE.encode()

    target = ScrapeTarget("http://x/m", "http://x/m", (DEP,))
    published: list[dict[str, Reading]] = []
    leader = Scraper(get, [target], 1.0, 1.0, lambda key: 1, on_result=lambda t, r: published.append(dict(r)))
    follower = Scraper(get, [target], 1.0, 1.0, lambda key: 4)
    await leader.scrape(target)
    assert leader.fetches == 1 and len(published) == 1
    follower.apply(target.subject, published[0])
    mine, theirs = leader.state(DEP.key), follower.state(DEP.key)
    assert mine is not None and theirs is not None and follower.fetches == 0
    assert theirs.sample is not None and mine.sample is not None
    assert theirs.sample.waiting == mine.sample.waiting == 3.0
    assert theirs.sample.in_flight_at == 4  # its own in-flight count, not the leader's
    assert "x/m" not in target.subject  # a URL may hold a credential: the shared name is a digest


async def test_rate_limits_fall_back_to_this_process_while_the_link_is_down() -> None:
    redis = Redis.from_url(DEAD_REDIS)
    link = SharedLink(redis, "t")
    limiter = FailoverRateLimiter(RedisRateLimiter(redis, prefix="t"), link)
    limit = model_limit("m", 2, 0)
    first = await limiter.reserve([limit], 10)
    assert isinstance(first, LocalReservation)
    assert not isinstance(await limiter.reserve([limit], 10), Denial)
    assert isinstance(await limiter.reserve([limit], 10), Denial)  # this process's own count still limits
    await limiter.settle(first, 5)  # goes back to the store that charged it
    await redis.aclose()


async def test_rate_limits_refuse_while_the_link_is_down_when_failing_closed() -> None:
    redis = Redis.from_url(DEAD_REDIS)
    limiter = FailoverRateLimiter(RedisRateLimiter(redis, prefix="t"), SharedLink(redis, "t"), fail_closed=True)
    with pytest.raises(RateLimitsUnavailable) as caught:
        await limiter.reserve([model_limit("m", 2, 0)], 10)
    assert caught.value.status == 503 and caught.value.code == "rate_limiter_unavailable"
    await redis.aclose()


def settings_for(tmp_path: Path, **env: str) -> Settings:
    models = {"models": [{"id": "m", "route": [{"kind": "mock", "name": "gpu", "max_concurrent": 8}]}]}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(models))
    return Settings.from_env({"MODELS_CONFIG": str(tmp_path / "models.yaml"), **env}, root=tmp_path)


def test_the_start_up_warning_names_the_multiplication(tmp_path: Path) -> None:
    warning = per_worker_warning(3, settings_for(tmp_path))
    assert "3 workers and no REDIS_URL" in warning
    assert "up to 3x" in warning and "m/gpu max_concurrent: 8 admits 24 calls" in warning
    assert per_worker_warning(1, settings_for(tmp_path)) == ""
    assert per_worker_warning(2, settings_for(tmp_path, REDIS_URL="redis://r:6379/0")) == ""


def test_redis_fail_is_open_or_closed(tmp_path: Path) -> None:
    assert not settings_for(tmp_path).redis_fail_closed
    assert settings_for(tmp_path, REDIS_FAIL="Closed").redis_fail_closed
