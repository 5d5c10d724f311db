"""The shared-state parts against the real Redis, two "processes" (two Fleets, each its own connections) at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from routing.budget import SpendWindow
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


async def test_the_spill_budget_is_the_fleets_and_each_process_keeps_its_own_when_redis_is_away(
    fleets: FleetOf,
) -> None:
    one, two = await fleets(), await fleets()
    here, there = SpendWindow(1.0), SpendWindow(1.0)
    here.add(10.0, 0.6)
    there.add(10.0, 0.5)  # neither process alone is over the 1 USD cap
    assert here.left(10.0) and there.left(10.0)
    await one.spill.sync(here, 10.0)
    await two.spill.sync(there, 10.0)
    await one.spill.sync(here, 10.0)  # the first process reads what the second added
    assert here.unsynced == there.unsynced == 0.0
    assert here.spent(10.0) == pytest.approx(1.1) and there.spent(10.0) == pytest.approx(1.1)
    assert not here.left(10.0) and not there.left(10.0)  # the fleet has spent its cap: neither spills on
    await one.spill.sync(here, 10.0)  # a sync with nothing new adds nothing
    assert here.spent(10.0) == pytest.approx(1.1)

    away = await fleets(url="redis://127.0.0.1:1/0")
    alone = SpendWindow(1.0)
    alone.add(10.0, 0.25)
    await away.spill.sync(alone, 10.0)  # Redis down: its own spend counts, kept to tell the fleet later
    assert alone.spent(10.0) == 0.25 and alone.unsynced == 0.25 and alone.left(10.0)
