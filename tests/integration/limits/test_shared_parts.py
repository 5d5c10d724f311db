"""The shared-state parts against the real Redis, two "processes" (two Fleets, each its own connections) at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from routing.shared.fleet import Fleet, shared_redis
from routing.shared.leases import FULL, LOCAL
from tests.integration.limits.test_multiprocess import REDIS_URL
from tests.integration.limits.test_multiprocess import redis_prefix as redis_prefix

FleetOf = Callable[..., Any]


@pytest.fixture
async def fleets(redis_prefix: str) -> AsyncIterator[FleetOf]:
    made: list[Fleet] = []

    async def make(subjects: tuple[str, ...] = (), lease_s: float = 15.0, url: str = REDIS_URL) -> Fleet:
        fleet = Fleet(shared_redis(url), url, redis_prefix, lambda: subjects, lease_s=lease_s)
        await fleet.start()
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        await fleet.close()
        await fleet.link.redis.aclose()


async def until(check: Callable[[], bool], within: float = 2.0) -> bool:
    for _ in range(int(within / 0.02)):
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


async def test_leases_count_across_processes_and_come_back_when_released(fleets: FleetOf) -> None:
    a, b = await fleets(), await fleets()
    first, second = await a.leases.acquire("m/a", 2), await b.leases.acquire("m/a", 2)
    assert first not in (FULL, LOCAL) and second not in (FULL, LOCAL)
    assert await a.leases.acquire("m/a", 2) == FULL
    assert await b.leases.acquire("m/b", 2) not in (FULL, LOCAL)  # another deployment has its own count
    b.leases.release(second)
    assert await until(lambda: b.leases.held() == 1)
    await asyncio.sleep(0.05)  # the release went in the background
    assert await a.leases.acquire("m/a", 2) not in (FULL, LOCAL)


async def test_a_dead_processes_leases_expire_and_a_live_ones_are_renewed(fleets: FleetOf) -> None:
    live, dead = await fleets(lease_s=1.0), await fleets(lease_s=1.0)
    assert await live.leases.acquire("m/a", 2) not in (FULL, LOCAL)
    assert await dead.leases.acquire("m/a", 2) not in (FULL, LOCAL)
    assert dead.leases._renewer is not None
    dead.leases._renewer.cancel()  # as if SIGKILLed: nothing renews or releases its lease
    await asyncio.sleep(1.6)
    assert await live.leases.acquire("m/a", 2) not in (FULL, LOCAL)  # the dead one's slot came back...
    assert await live.leases.acquire("m/a", 2) == FULL  # ...the live one's was renewed past its first second


async def test_one_leader_per_job_and_a_takeover_when_it_stops_renewing(fleets: FleetOf) -> None:
    a, b = await fleets(), await fleets()
    assert await a.leader.lead("probe:m/a", 0.3)
    assert not await b.leader.lead("probe:m/a", 0.3)
    assert await a.leader.lead("probe:m/a", 0.3)  # renewed
    assert await b.leader.lead("probe:m/b", 0.3)  # another job, another election
    await asyncio.sleep(0.4)  # a stopped renewing
    assert await b.leader.lead("probe:m/a", 0.3)
    assert not await a.leader.lead("probe:m/a", 0.3)
    await b.leader.resign_all()  # a clean shutdown hands the jobs back at once
    assert await a.leader.lead("probe:m/a", 0.3)


async def test_one_half_open_trial_per_deployment_across_the_fleet(fleets: FleetOf) -> None:
    a, b = await fleets(), await fleets()
    assert await a.board.claim_trial("m/a", 5.0)
    assert not await b.board.claim_trial("m/a", 5.0)
    b.board.end_trial("m/a")  # not the holder: changes nothing
    await asyncio.sleep(0.05)
    assert not await b.board.claim_trial("m/a", 5.0)
    a.board.end_trial("m/a")
    await asyncio.sleep(0.05)
    assert await b.board.claim_trial("m/a", 5.0)


async def test_news_reaches_the_other_process_and_a_latecomer_reads_the_latest(fleets: FleetOf) -> None:
    a = await fleets(("m/a",))
    b = await fleets(("m/a",))
    got: list[tuple[str, dict[str, Any]]] = []
    b.board.on("circuit", lambda key, message: got.append((key, message)))
    a.board.on("circuit", lambda key, message: pytest.fail("a process applies its own news"))
    await asyncio.sleep(0.2)  # both subscribed
    a.board.publish("circuit", "m/a", {"status": "open", "until": 1e12}, 5.0)
    assert await until(lambda: len(got) == 1)
    assert got[0][0] == "m/a" and got[0][1]["status"] == "open"
    late_news: list[str] = []
    c = await fleets(("m/a",))
    c.board.on("circuit", lambda key, message: late_news.append(message["status"]))
    await c.board.resync()
    assert late_news == ["open"]


async def test_a_link_to_a_dead_redis_is_down_and_every_part_falls_back(fleets: FleetOf) -> None:
    fleet = await fleets(url="redis://127.0.0.1:1/0")
    assert not fleet.up and fleet.link.status == "degraded: shared state unavailable"
    assert await fleet.leases.acquire("m/a", 1) == LOCAL
    assert await fleet.leader.lead("probe:m/a", 1.0)  # every process probes for itself
    assert await fleet.board.claim_trial("m/a", 1.0)
    fleet.board.publish("circuit", "m/a", {"status": "open"}, 1.0)  # dropped, without an error
