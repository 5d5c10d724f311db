"""`python -m bench.soak` (what `make soak` runs): N calls (default one million) at a moderate rate through one
`gateway serve --workers 2` of the checkout `--root`, call log on (a throwaway PostgreSQL), against the canned
upstream (bench/upstream.py, its own process). Every `--sample` seconds it records calls done and each worker's
RSS and open file descriptors; at the end it drains the gateway (SIGTERM) and counts the rows. It passes when
there was no error, exactly N rows, and RSS / fds after warm-up stay flat (`--rss-slack` MiB, `--fd-slack`).
Prints the samples as a table and an ASCII curve; `--write-results` puts them on top of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg

from bench.chaos import commit_of, write_results
from bench.chaos_fleet import Replica
from bench.chaos_services import ThrowawayPostgres
from bench.chaos_traffic import body
from bench.procs import OUT, ROOT, models_yaml, start_upstream


@dataclass(frozen=True, slots=True)
class Sample:
    at_s: float
    calls: int
    rss_mib: tuple[float, ...]  # per worker
    fds: tuple[int, ...]


def flatness(samples: list[Sample], warmup_fraction: float = 0.2) -> tuple[float, int]:
    """Growth after warm-up: (largest total worker RSS minus the total at the end of warm-up, in MiB; the same
    for open fds). Samples whose worker count changed are skipped (a replaced worker starts small)."""
    if not samples:
        return 0.0, 0
    workers = len(samples[0].rss_mib)
    steady = [s for s in samples if len(s.rss_mib) == workers]
    start = steady[min(len(steady) - 1, int(len(steady) * warmup_fraction))]
    after = [s for s in steady if s.at_s >= start.at_s]
    rss = max(sum(s.rss_mib) for s in after) - sum(start.rss_mib)
    fds = max(sum(s.fds) for s in after) - sum(start.fds)
    return round(rss, 1), fds


def curve(samples: list[Sample], width: int = 50, lines_max: int = 30) -> str:
    """Total worker RSS over calls done, one line per sample (at most `lines_max`, evenly picked, the last kept),
    as a bar from the smallest to the largest value."""
    if not samples:
        return ""
    if len(samples) > lines_max:
        step = len(samples) / (lines_max - 1)
        samples = [samples[int(k * step)] for k in range(lines_max - 1)] + [samples[-1]]
    totals = [sum(s.rss_mib) for s in samples]
    low, high = min(totals), max(totals)
    span = max(high - low, 1e-9)
    lines = []
    for s, total in zip(samples, totals, strict=True):
        bar = "#" * (1 + int((total - low) / span * (width - 1)))
        lines.append(f"{s.calls:>9,} calls  {total:7.1f} MiB  fds {sum(s.fds):4d}  {bar}")
    return "\n".join(lines)


async def drive(url: str, calls: int, concurrency: int, rate: float, done: list[int], errors: list[str]) -> None:
    """`calls` calls over `concurrency` keep-alive connections, at most `rate` per second; one in four streamed."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    next_id = iter(range(calls))
    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def worker() -> None:
            for n in next_id:
                due = began + n / rate
                if (delay := due - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
                stream = n % 4 == 3
                try:
                    async with http.post(
                        url, data=body("bench-model", f"soak{n}", stream), headers={"content-type": "application/json"}
                    ) as resp:
                        raw = await resp.read()
                        if resp.status != 200 or (stream and b"[DONE]" not in raw):
                            errors.append(f"soak{n}: {resp.status} {raw[:120]!r}")
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    errors.append(f"soak{n}: {type(exc).__name__}: {exc}")
                done[0] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def watch(replica: Replica, done: list[int], every: float, samples: list[Sample], began: float) -> None:
    while True:
        stats = replica.memory_fds()[1:]  # workers only
        samples.append(
            Sample(
                round(time.monotonic() - began, 1),
                done[0],
                tuple(round(r, 1) for _, r, _ in stats),
                tuple(f for *_, f in stats),
            )
        )
        await asyncio.sleep(every)


async def soak(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    pg = ThrowawayPostgres()
    upstream = start_upstream(16)
    replica: Replica | None = None
    try:
        env = {
            "MODELS_CONFIG": str(models_yaml(workdir, upstream.port)),
            "ROUTING_CONFIG": "/nonexistent.yaml",
            "LOG_LEVEL": "WARNING",
            "USE_SQLITE_LOG": "false",
            "DATABASE_URL": pg.url,
            "VAR_DIR": str(workdir),
            "CALL_LOG_SPOOL_DIR": str(workdir / "spool"),
            "MAX_STREAMS_PER_CLIENT": "0",
            "GRACEFUL_TIMEOUT": "30",
        }
        env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}, **env}
        replica = Replica("soak", args.root, workdir / "gw", env, workers=2)
        await asyncio.to_thread(replica.start)
        done, errors, samples = [0], [], []  # type: ignore[var-annotated]
        began = time.monotonic()
        watcher = asyncio.create_task(watch(replica, done, args.sample, samples, began))
        url = f"http://127.0.0.1:{replica.port}/v1/chat/completions"
        await drive(url, args.calls, args.concurrency, args.rate, done, errors)
        elapsed = time.monotonic() - began
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await asyncio.sleep(0.5)
        samples.append(Sample(round(time.monotonic() - began, 1), done[0], *_last(replica)))
        await asyncio.to_thread(replica.stop)
        conn = await asyncpg.connect(pg.url)
        try:
            rows = await conn.fetchval("SELECT count(*) FROM api_logs")
            distinct = await conn.fetchval("SELECT count(DISTINCT user_id) FROM api_logs")
        finally:
            await conn.close()
        rss_growth, fd_growth = flatness(samples)
        return {
            "calls": args.calls,
            "done": done[0],
            "errors": len(errors),
            "error_examples": errors[:5],
            "rows": rows,
            "distinct_ids": distinct,
            "seconds": round(elapsed, 1),
            "rate": round(done[0] / elapsed, 1),
            "rss_growth_mib": rss_growth,
            "fd_growth": fd_growth,
            "samples": [asdict(s) for s in samples],
        }
    finally:
        if replica is not None:
            with contextlib.suppress(Exception):
                replica.stop()
        upstream.stop()
        pg.close()


def _last(replica: Replica) -> tuple[tuple[float, ...], tuple[int, ...]]:
    stats = replica.memory_fds()[1:]
    return tuple(round(r, 1) for _, r, _ in stats), tuple(f for *_, f in stats)


def verdict(result: dict[str, object], rss_slack: float, fd_slack: int) -> list[str]:
    """What failed, in words (empty: the soak passed)."""
    failed = []
    if result["errors"]:
        failed.append(f"{result['errors']} errors")
    if result["rows"] != result["calls"] or result["distinct_ids"] != result["calls"]:
        failed.append(f"{result['rows']} rows ({result['distinct_ids']} distinct) for {result['calls']} calls")
    growth = result["rss_growth_mib"]
    assert isinstance(growth, float)
    if growth > rss_slack:
        failed.append(f"RSS grew {growth} MiB after warm-up (slack {rss_slack})")
    fds = result["fd_growth"]
    assert isinstance(fds, int)
    if fds > fd_slack:
        failed.append(f"open fds grew by {fds} after warm-up (slack {fd_slack})")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=400.0, help="at most this many calls per second")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS/fd samples")
    parser.add_argument("--rss-slack", type=float, default=20.0)
    parser.add_argument("--fd-slack", type=int, default=8)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    args.root = args.root.resolve()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = asyncio.run(soak(args, Path(tmp)))
    samples = [Sample(s["at_s"], s["calls"], tuple(s["rss_mib"]), tuple(s["fds"])) for s in result["samples"]]  # type: ignore[attr-defined, index]
    drawing = curve(samples)
    failed = verdict(result, args.rss_slack, args.fd_slack)
    print(drawing)
    summary = (
        f"soak: {result['done']:,} calls in {result['seconds']} s ({result['rate']}/s), {result['errors']} errors, "
        f"{result['rows']:,} rows ({result['distinct_ids']:,} distinct ids); after warm-up RSS "
        f"+{result['rss_growth_mib']} MiB, fds +{result['fd_growth']}: "
        + ("FAILED: " + "; ".join(failed) if failed else "passed")
    )
    print(summary, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps(result, indent=2))
    if args.write_results:
        section = (
            f"## {datetime.now(UTC):%Y-%m-%d}: `make soak`, {args.calls:,} calls (issue 14)\n\n"
            f"Ran on `{commit_of(args.root)}`: one `gateway serve --workers 2`, PostgreSQL call log (a throwaway "
            f"instance), the canned upstream, {args.concurrency} keep-alive clients capped at {args.rate:g} calls/s, "
            f"one call in four streamed. Total RSS of the two workers and their open fds, sampled every "
            f"{args.sample:g} s:\n\n"
            f"```\n{drawing}\n```\n\n{summary}\n"
        )
        write_results(section)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
