"""`python -m bench.chaos` (what `make chaos` runs): the fault matrix of issue 14.

Two gateway replicas (`gateway serve --workers 2` each, of the checkout `--root`) behind a round-robin TCP
balancer (bench/chaos_fleet.py), sharing a throwaway Redis and a throwaway PostgreSQL call log
(bench/chaos_services.py), in front of fake upstreams and two vLLM twins. Steady open-loop traffic (mixed
streamed / not, two models) runs the whole time; the faults are injected one at a time, each held, then healed.
Each call carries a unique id in `user`, so after the fleet drained every call is matched with its row. The
figures and their definitions: bench/chaos_measure.py. Prints a table; `--write-results` puts it on top of
bench/RESULTS.md; the raw figures go to bench/out/chaos.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench.chaos_fleet import LOCAL_MODEL, MODEL, UPSTREAM, Balancer, Replica, Upstreams, gateway_env, upstreams
from bench.chaos_measure import (
    CallResult,
    Phase,
    PhaseReport,
    RowSeen,
    markdown_table,
    missed_targets,
    summarize,
    text_table,
)
from bench.chaos_services import SmallDisk, ThrowawayPostgres, ThrowawayRedis
from bench.chaos_traffic import Traffic
from bench.procs import OUT, ROOT

LEAD_S, TAIL_S = 3.0, 4.0
PREFIX = "chaos"  # the replicas' RATE_LIMIT_PREFIX: one fleet, one set of counters and stream leases
DEPLOYMENT_FAULTS = ("upstream refusing", "upstream hangs before headers", "upstream stalls mid-stream")
DEPLOYMENT_FAULTS += ("upstream flapping", "upstream 429 + Retry-After", "all local deployments full")


@dataclass(slots=True)
class Fleet:
    ups: Upstreams
    replicas: list[Replica]
    pg: ThrowawayPostgres
    redis: ThrowawayRedis
    disk: SmallDisk
    traffic: Traffic


Action = Callable[[], Awaitable[None]]


async def run_phase(
    fleet: Fleet,
    name: str,
    hold: float,
    inject: Action,
    heal: Action,
    *,
    model: str = "",
    faulty: tuple[str, ...] = (),
    lead: float = LEAD_S,
    tail: float = TAIL_S,
) -> Phase:
    """Baseline for `lead`, inject, hold, heal, watch for `tail`."""
    print(f"chaos: {name} ...", flush=True)
    phase = Phase(name, time.time(), 0.0, 0.0, model=model, faulty=frozenset(faulty))
    await asyncio.sleep(lead)
    await inject()
    phase.inject_at = time.time()
    await asyncio.sleep(hold)
    await heal()
    phase.heal_at = time.time()
    await asyncio.sleep(tail)
    phase.window_end = time.time()
    return phase


def behave(fleet: Fleet, name: str, **changes: object) -> Action:
    async def act() -> None:
        fleet.ups.fakes[name].behaviour = {**UPSTREAM, **changes}

    return act


async def refusing(fleet: Fleet) -> Phase:
    up = fleet.ups.fakes["up-a"]
    phase = await run_phase(
        fleet,
        "upstream refusing",
        6,
        lambda: asyncio.to_thread(up.stop_sync),
        lambda: asyncio.to_thread(up.start_sync),
        model=MODEL,
        faulty=("up-a",),
    )
    phase.forced = relaying_from_up_a(phase)
    phase.notes.append("forced: streams already relaying from up-a when its connections were closed")
    return phase


def relaying_from_up_a(phase: Phase) -> Callable[[CallResult], bool]:
    """A stream answered by up-a, cut during the fault: it cannot move to another deployment mid-answer."""
    return lambda c: c.stream and c.deployment == "up-a" and phase.inject_at - 3 <= c.start < phase.heal_at


async def hanging(fleet: Fleet) -> Phase:
    hang, heal = behave(fleet, "up-a", delay_headers=60), behave(fleet, "up-a")
    return await run_phase(fleet, "upstream hangs before headers", 6, hang, heal, model=MODEL, faulty=("up-a",))


async def stalling(fleet: Fleet) -> Phase:
    stall, heal = behave(fleet, "up-a", stall_after=2, stall_seconds=30), behave(fleet, "up-a")
    phase = await run_phase(fleet, "upstream stalls mid-stream", 6, stall, heal, model=MODEL, faulty=("up-a",))
    # a stream already relaying from up-a cannot move to another deployment: the client gets the error chunk
    phase.forced = relaying_from_up_a(phase)
    phase.notes.append("forced: streamed calls answered by up-a (already relaying when it stalled)")
    return phase


async def flapping(fleet: Fleet) -> Phase:
    up = fleet.ups.fakes["up-a"]
    flapper: asyncio.Task[None] | None = None

    async def flap() -> None:
        while True:
            await asyncio.to_thread(up.stop_sync)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(up.start_sync)
            await asyncio.sleep(1.0)

    async def inject() -> None:
        nonlocal flapper
        flapper = asyncio.create_task(flap())

    async def heal() -> None:
        assert flapper is not None
        flapper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flapper
        await asyncio.to_thread(up.start_sync)

    phase = await run_phase(fleet, "upstream flapping", 10, inject, heal, model=MODEL, faulty=("up-a",))
    phase.forced = relaying_from_up_a(phase)
    phase.notes.append("down 1 s / up 1 s for 10 s; forced: streams relaying from up-a when it went down")
    return phase


async def rate_limited(fleet: Fleet) -> Phase:
    limited, heal = behave(fleet, "up-a", status=429, retry_after=3), behave(fleet, "up-a")
    return await run_phase(fleet, "upstream 429 + Retry-After", 8, limited, heal, model=MODEL, faulty=("up-a",))


async def local_full(fleet: Fleet) -> Phase:
    twins = list(fleet.ups.twins.values())

    async def fill() -> None:
        for twin in twins:
            twin.override(waiting=9)

    async def heal() -> None:
        for twin in twins:
            twin.override()

    return await run_phase(
        fleet, "all local deployments full", 6, fill, heal, model=LOCAL_MODEL, faulty=tuple(fleet.ups.twins)
    )


async def redis_down(fleet: Fleet) -> Phase:
    phase = await run_phase(
        fleet,
        "Redis stopped 20 s",
        20,
        lambda: asyncio.to_thread(fleet.redis.stop),
        lambda: asyncio.to_thread(fleet.redis.start),
    )
    phase.notes.append("Redis SIGKILLed (no persistence) and started empty on the same port")
    return phase


async def rows_caught_up(fleet: Fleet, phase: Phase, since: float, within: float = 30.0) -> float | None:
    """Seconds from `since` until every call of the phase that ended before it has its row (polled)."""
    ids = [c.cid for c in fleet.traffic.calls if c.start >= phase.window_start and c.end and c.end < since]
    deadline = time.time() + within
    while time.time() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            conn = await asyncpg.connect(fleet.pg.url, timeout=2)
            try:
                found = await conn.fetchval("SELECT count(*) FROM api_logs WHERE user_id = ANY($1::text[])", ids)
            finally:
                await conn.close()
            if found >= len(ids):
                return round(time.time() - since, 2)
        await asyncio.sleep(0.5)
    return None


async def first_row_after(fleet: Fleet, since: float, within: float = 40.0) -> float | None:
    """Seconds from `since` until a row of a call started after it is in PostgreSQL (polled)."""
    deadline = time.time() + within
    while time.time() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            conn = await asyncpg.connect(fleet.pg.url, timeout=2)
            try:
                found = await conn.fetchval("SELECT 1 FROM api_logs WHERE timestamp >= to_timestamp($1) LIMIT 1", since)
            finally:
                await conn.close()
            if found:
                return round(time.time() - since, 2)
        await asyncio.sleep(0.25)
    return None


async def postgres_down(fleet: Fleet) -> Phase:
    phase = await run_phase(
        fleet,
        "PostgreSQL stopped 30 s",
        30,
        lambda: asyncio.to_thread(fleet.pg.stop),
        lambda: asyncio.to_thread(fleet.pg.start),
        tail=1.0,
    )
    phase.recovered_after = await rows_caught_up(fleet, phase, phase.heal_at)
    phase.window_end = time.time()
    phase.notes.append("recover: until every row of the calls finished before the restart was in PostgreSQL")
    return phase


LEASE_KEYS = (f"{PREFIX}:streams:*", f"{PREFIX}:shared:inflight:*")  # stream caps; shared-state max_concurrent


async def stream_leases(url: str) -> dict[str, float]:
    """Every lease in Redis the fleet holds (stream-cap slots and, with the shared-state branch, `max_concurrent`
    in-flight slots): `key member` -> when it runs out (unix seconds); {} when Redis is down."""
    client = Redis.from_url(url)
    leases: dict[str, float] = {}
    try:
        for pattern in LEASE_KEYS:
            async for key in client.scan_iter(match=pattern):
                for member, score in await client.zrange(key, 0, -1, withscores=True):
                    leases[f"{key.decode()} {member.decode()}"] = score / 1000 if score > 1e11 else score
    except RedisError:
        return {}
    finally:
        await client.aclose()
    return leases


async def dead_leases(url: str, at_kill: set[str], killed_at: float, wait_s: float = 20.0) -> list[str]:
    """Of the leases held at the kill, those still held now are the dead worker's: how many per kind, and (for
    the shared-state in-flight leases, which are short) how long until they are gone, polled up to `wait_s`."""
    notes = []
    for kind, pattern in zip(("stream-cap", "in-flight"), LEASE_KEYS, strict=True):
        prefix = pattern.rstrip("*")
        mine = {m for m in at_kill if m.startswith(prefix)}
        if not mine:
            continue
        now = await stream_leases(url)
        left = mine & set(now)
        deadline = time.time() + (wait_s if kind == "in-flight" else 0.0)
        while left and time.time() < deadline:
            await asyncio.sleep(0.5)
            left &= set(await stream_leases(url))
        after = time.time() - killed_at
        if left:
            expiry = max(now.get(m, 0.0) for m in left) - time.time()
            notes.append(
                f"{kind} leases: {len(mine)} held at the kill, {len(left)} still held {after:.0f} s later "
                f"(they run out in {expiry:.0f} s)"
            )
        else:
            notes.append(f"{kind} leases: {len(mine)} held at the kill, the dead worker's freed by {after:.0f} s")
    return notes


def rows_lost(replicas: list[Replica]) -> int:
    """gateway_call_log_rows_lost summed over the replicas' /metrics (each sums its workers)."""
    total = 0
    for replica in replicas:
        url = f"http://127.0.0.1:{replica.port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("gateway_call_log_rows_lost"):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


async def disk_full(fleet: Fleet) -> Phase:
    before = await asyncio.to_thread(rows_lost, fleet.replicas)
    written = 0

    async def inject() -> None:
        nonlocal written
        written = await asyncio.to_thread(fleet.disk.fill)
        await asyncio.to_thread(fleet.pg.stop)

    async def heal() -> None:
        await asyncio.to_thread(fleet.pg.start)
        await asyncio.to_thread(fleet.disk.drain)

    phase = await run_phase(fleet, "spool disk full (+ PostgreSQL down 10 s)", 10, inject, heal, tail=0.0)
    phase.recovered_after = await first_row_after(fleet, phase.heal_at)
    await asyncio.sleep(TAIL_S)
    phase.window_end = time.time()
    lost = await asyncio.to_thread(rows_lost, fleet.replicas) - before
    how = f"tmpfs filled with a {written // 1024} KiB ballast" if fleet.disk.mounted else "no tmpfs: NOT exercised"
    # rows the gateway could neither write nor spool nor hold (CALL_LOG_QUEUE_MAX each) are lost by design;
    # the target is that it keeps serving and that rows_lost says how many
    phase.forced_missing = lambda c: True
    phase.rows_lost = lost
    phase.notes.append(
        f"{how}; rows missing are the fault's, gateway_call_log_rows_lost rose by {lost}; "
        "recover: until a row of a call started after the heal was in PostgreSQL (the writer's retry back-off)"
    )
    return phase


async def slow_streams(fleet: Fleet, on: bool) -> None:
    for name in ("up-a", "up-b", "up-c"):
        fleet.ups.fakes[name].behaviour = {**UPSTREAM, "chunk_delay": 0.2} if on else dict(UPSTREAM)


async def sigkill_worker(fleet: Fleet) -> Phase:
    replica = fleet.replicas[0]
    killed_at = 0.0
    back_after: float | None = None

    at_kill: set[str] = set()

    async def inject() -> None:
        nonlocal killed_at
        await slow_streams(fleet, True)  # streams of ~1.2 s, so some are mid-stream on the worker
        await asyncio.sleep(2.0)
        pid = replica.kill_worker()
        killed_at = time.time()
        at_kill.update(await stream_leases(fleet.redis.url))
        print(f"chaos: SIGKILLed worker {pid} of {replica.name}", flush=True)

    async def heal() -> None:
        nonlocal back_after
        deadline = time.time() + 20
        while time.time() < deadline and len(replica.worker_pids()) < replica.workers:  # noqa: ASYNC110 (polls /proc)
            await asyncio.sleep(0.1)
        if len(replica.worker_pids()) >= replica.workers:
            back_after = round(time.time() - killed_at, 2)
        await slow_streams(fleet, False)

    phase = await run_phase(fleet, "SIGKILL one worker mid-stream", 3, inject, heal, lead=2.0)
    phase.inject_at = killed_at
    # every call in flight at the kill has ended by now (streams of 1.2 s, a tail of 4 s): the leases of the
    # kill's time still held are the dead worker's
    phase.notes.extend(await dead_leases(fleet.redis.url, at_kill, killed_at))
    phase.recovered_after = back_after
    # in flight at the kill, failed: those on the killed worker (we cannot tell which worker served a call)
    phase.forced = lambda c: c.start <= killed_at <= c.end + 0.05
    # rows of calls in flight or finished within a second before the kill may have been in its memory queue
    phase.forced_missing = lambda c: c.start <= killed_at and c.end >= killed_at - 1.0
    phase.notes.append("recover: until uvicorn's supervisor had replaced the worker (2 workers again)")
    phase.notes.append("forced: failed calls in flight at the kill; rows: calls in flight or ended < 1 s before it")
    return phase


async def sigterm_replica(fleet: Fleet) -> Phase:
    replica = fleet.replicas[1]
    sent = 0.0
    code = 0
    drained = back = 0.0

    async def inject() -> None:
        nonlocal sent
        await slow_streams(fleet, True)
        await asyncio.sleep(2.0)
        replica.terminate()
        sent = time.time()

    async def heal() -> None:
        nonlocal code, drained, back
        code = await asyncio.to_thread(replica.wait, 60)
        drained = time.time() - sent
        await slow_streams(fleet, False)
        await asyncio.to_thread(replica.start)
        back = time.time() - sent

    phase = await run_phase(fleet, "SIGTERM one replica", 0.0, inject, heal, lead=2.0)
    phase.inject_at = sent
    phase.recovered_after = round(back, 2)
    phase.notes.append(f"drained and exited {code} in {drained:.2f} s; recover: until it was ready again")
    return phase


async def disconnect_storm(fleet: Fleet) -> Phase:
    storm: list[CallResult] = []

    async def inject() -> None:
        storm.extend(fleet.traffic.launch(MODEL if i % 2 else LOCAL_MODEL, True, storm=True) for i in range(60))

    async def heal() -> None:
        pass

    phase = await run_phase(fleet, "client disconnect storm", 2, inject, heal)
    phase.notes.append(f"{len(storm)} streams whose clients left after the first chunk (rows counted)")
    return phase


FAULTS: dict[str, Callable[[Fleet], Awaitable[Phase]]] = {
    "refuse": refusing,
    "hang": hanging,
    "stall": stalling,
    "flap": flapping,
    "429": rate_limited,
    "local-full": local_full,
    "redis": redis_down,
    "postgres": postgres_down,
    "disk-full": disk_full,
    "sigkill": sigkill_worker,
    "sigterm": sigterm_replica,
    "storm": disconnect_storm,
}


async def fetch_rows(url: str) -> dict[str, RowSeen]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        records = await conn.fetch(
            "SELECT user_id, extract(epoch from timestamp) AS at, deployment, status_code, attempts FROM api_logs"
        )
    finally:
        await conn.close()
    rows = {}
    for r in records:
        attempts = orjson.loads(r["attempts"]) if r["attempts"] else []
        attempted = tuple(a.get("deployment", "") for a in attempts)
        rows[r["user_id"]] = RowSeen(
            r["user_id"], float(r["at"]), r["deployment"] or "", r["status_code"] or 0, attempted
        )
    return rows


def pick(n: int) -> tuple[str, bool]:
    """Two calls in three to chaos-model, one to chaos-local; every other call streamed."""
    return (LOCAL_MODEL if n % 3 == 2 else MODEL), n % 2 == 0


async def run(root: Path, rate: float, only: list[str], workdir: Path) -> tuple[list[PhaseReport], dict[str, object]]:
    pg, redis = ThrowawayPostgres(), ThrowawayRedis()
    disk = SmallDisk(workdir / "spool")
    replicas: list[Replica] = []
    balancer: Balancer | None = None
    try:
        with upstreams() as ups:
            models, routing = ups.configs()
            for name in ("gw-a", "gw-b"):
                extra = {
                    "DATABASE_URL": pg.url,
                    "REDIS_URL": redis.url,
                    # so every call's admission, and every stream's slot, go through Redis
                    "CLIENT_RPM": "1000000",
                    "MAX_STREAMS_PER_CLIENT": "1000",
                    # a small queue, so the disk-full fault overflows what a worker may hold in memory
                    "CALL_LOG_QUEUE_MAX": "20",
                    "RATE_LIMIT_PREFIX": PREFIX,
                    "VAR_DIR": str(workdir / name),
                    "CALL_LOG_SPOOL_DIR": str(disk.path / name),
                }
                replicas.append(
                    Replica(name, root, workdir / name, gateway_env(workdir / name, models, routing, extra))
                )
            for replica in replicas:
                await asyncio.to_thread(replica.start)
            balancer = Balancer([r.port for r in replicas])
            await balancer.start()
            traffic = Traffic(f"http://127.0.0.1:{balancer.port}/v1/chat/completions", rate, pick)
            fleet = Fleet(ups, replicas, pg, redis, disk, traffic)
            await traffic.start()
            await asyncio.sleep(3.0)  # warm-up, not counted in any phase
            phases = [await FAULTS[name](fleet) for name in only]
            await traffic.stop()
            print("chaos: draining the fleet (SIGTERM) ...", flush=True)
            for replica in replicas:
                await asyncio.to_thread(replica.stop)
            rows = await fetch_rows(pg.url)
            reports = [summarize(p, traffic.calls, rows) for p in phases]
            OUT.mkdir(parents=True, exist_ok=True)
            with (OUT / "chaos-calls.jsonl").open("wb") as fh:
                for call in traffic.calls:
                    row = rows.get(call.cid)
                    fh.write(orjson.dumps({**asdict(call), "row": None if row is None else asdict(row)}) + b"\n")
            extra_info: dict[str, object] = {
                "calls": len(traffic.calls),
                "rows": len(rows),
                "balancer_refused": balancer.refused,
                "balancer_empty": [
                    (round(t, 3), next(r.name for r in replicas if r.port == port)) for t, port in balancer.empty
                ],
                "failures": _failures(phases, traffic.calls),
                "phases": [
                    {
                        "name": p.name,
                        "start": p.window_start,
                        "inject": p.inject_at,
                        "heal": p.heal_at,
                        "end": p.window_end,
                    }
                    for p in phases
                ],
            }
            return reports, extra_info
    finally:
        for replica in replicas:
            with contextlib.suppress(Exception):
                replica.stop()
        if balancer is not None:
            await balancer.close()
        pg.close()
        redis.close()
        disk.close()


def _failures(phases: list[Phase], calls: list[CallResult]) -> dict[str, list[str]]:
    """A few unforced failures per phase, to say what the client saw."""
    out: dict[str, list[str]] = {}
    for phase in phases:
        seen = [
            f"{c.cid} {c.model} stream={c.stream} {c.error}"
            for c in calls
            if phase.holds(c.start) and not c.storm and not c.ok and not phase.forced(c)
        ]
        if seen:
            out[phase.name] = seen[:5]
    return out


def commit_of(root: Path) -> str:
    git = ["git", "-C", str(root), "log", "-1", "--format=%h"]
    return subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()


def results_section(label: str, commit: str, reports: list[PhaseReport], info: dict[str, object]) -> str:
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d}: `make chaos` fault matrix, {label} (issue 14)",
        "",
        f"Ran on `{commit}`. Two replicas x two workers behind a round-robin TCP balancer, throwaway Redis and",
        "PostgreSQL, steady open-loop traffic (2/3 `chaos-model` over three fake upstreams, 1/3 `chaos-local` under",
        "`local_first` over two vLLM twins spilling to a cloud fake; every other call streamed). Definitions in",
        f"`bench/chaos_measure.py`. {info['calls']} calls, {info['rows']} rows.",
        "",
        markdown_table(reports),
        "",
    ]
    for report in reports:
        missed = missed_targets(report, deployment_fault=report.name in DEPLOYMENT_FAULTS)
        notes = list(report.notes) + ([f"**missed:** {'; '.join(missed)}"] if missed else [])
        if notes:
            lines.append(f"- {report.name}: " + "; ".join(notes))
    return "\n".join(lines) + "\n"


def write_results(section: str, path: Path = ROOT / "bench" / "RESULTS.md") -> None:
    """Insert `section` as the first section of RESULTS.md, under its title."""
    text = path.read_text()
    title, _, rest = text.partition("\n\n")
    path.write_text(f"{title}\n\n{section}\n{rest}")


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the fakes' "client went away" tracebacks
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose gateway runs (its own .venv)")
    parser.add_argument("--rate", type=float, default=16.0, help="steady calls per second")
    parser.add_argument("--only", default=",".join(FAULTS), help=f"comma list of faults: {','.join(FAULTS)}")
    parser.add_argument("--label", default="", help="names the run in RESULTS.md (default: the root's branch)")
    parser.add_argument("--write-results", action="store_true", help="put the table on top of bench/RESULTS.md")
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    if unknown := [name for name in only if name not in FAULTS]:
        parser.error(f"unknown fault(s) {unknown}; known: {','.join(FAULTS)}")
    root = args.root.resolve()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        reports, info = asyncio.run(run(root, args.rate, only, Path(tmp)))
    print(text_table(reports))
    for report in reports:
        for note in report.notes:
            print(f"  {report.name}: {note}")
    failures = info["failures"]
    assert isinstance(failures, dict)
    for name, seen in failures.items():
        print(f"  {name}: unforced failures, e.g. {seen}")
    print(f"chaos: {time.monotonic() - began:.0f} s, {info['calls']} calls, {info['rows']} rows", flush=True)
    branch = subprocess.run(
        ["git", "-C", str(root), "branch", "--show-current"], capture_output=True, text=True, check=False
    ).stdout.strip()
    label = args.label or f"branch `{branch or root.name}`"
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"root": str(root), "commit": commit_of(root), "reports": [asdict(r) for r in reports], **info}
    (OUT / "chaos.json").write_text(json.dumps(payload, indent=2))
    if args.write_results:
        write_results(results_section(label, commit_of(root), reports, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
