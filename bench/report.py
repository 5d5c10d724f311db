"""Render results as plain tables (console and markdown are the same text) and judge the targets."""

from __future__ import annotations

from typing import Any

TARGET_RPS = 1500.0
TARGET_ADDED_P50_MS = 0.5
TARGET_TTFT_P50_MS = 1.0


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def _ms(d: dict[str, float], key: str) -> str:
    return f"{d[key]:.3f}" if key in d else "-"


def _rps(r: dict[str, Any]) -> str:
    return f"{r['rps']:,.0f}"


def render(results: dict[str, Any], memory: list[dict[str, Any]]) -> str:
    out: list[str] = []
    if "latency1" in results:
        r = results["latency1"]
        rows = [
            [
                name,
                _ms(r[key]["latency_ms"], "p50"),
                _ms(r[key]["latency_ms"], "p90"),
                _ms(r[key]["latency_ms"], "p99"),
                f"{r[key]['requests']:,}",
            ]
            for name, key in (
                ("upstream direct", "direct"),
                ("gateway", "gateway"),
                ("gateway, mock deployment", "gateway_mock"),
            )
        ]
        rows.append(["added (gateway - direct)", *(_ms(r["added_ms"], k) for k in ("p50", "p90", "p99")), ""])
        rows.append(
            ["in-app overhead (call log)", *(_ms(r["in_app_overhead_ms"], k) for k in ("p50", "p90", "p99")), ""]
        )
        out += ["1. Non-streamed, 1 client (ms)", _table(["", "p50", "p90", "p99", "requests"], rows), ""]
    if "throughput64" in results:
        r = results["throughput64"]
        rows = [
            [
                name,
                _rps(r[key]),
                _ms(r[key]["latency_ms"], "p50"),
                _ms(r[key]["latency_ms"], "p99"),
                str(r[key]["errors"]),
            ]
            for name, key in (
                ("upstream direct", "direct"),
                ("gateway", "gateway"),
                ("gateway, mock deployment", "gateway_mock"),
            )
        ]
        out += ["2. Non-streamed, 64 clients", _table(["", "req/s", "p50 ms", "p99 ms", "errors"], rows), ""]
    if "stream1" in results:
        r = results["stream1"]
        rows = [
            [
                name,
                _ms(r[key]["ttft_ms"], "p50"),
                _ms(r[key]["ttft_ms"], "p99"),
                _ms(r[key]["latency_ms"], "p50"),
                _ms(r[key]["latency_ms"], "p99"),
            ]
            for name, key in (("upstream direct", "direct"), ("gateway", "gateway"))
        ]
        rows.append(
            [
                "added",
                _ms(r["added_ttft_ms"], "p50"),
                _ms(r["added_ttft_ms"], "p99"),
                _ms(r["added_total_ms"], "p50"),
                _ms(r["added_total_ms"], "p99"),
            ]
        )
        out += ["3. Streamed, 1 client (ms)", _table(["", "TTFT p50", "TTFT p99", "total p50", "total p99"], rows), ""]
    if "stream64" in results:
        r = results["stream64"]
        rows = [
            [name, _rps(r[key]), _ms(r[key]["latency_ms"], "p50"), _ms(r[key]["latency_ms"], "p99")]
            for name, key in (("upstream direct", "direct"), ("gateway", "gateway"))
        ]
        out += ["4. Streamed, 64 clients", _table(["", "req/s", "p50 ms", "p99 ms"], rows), ""]
    if "logging" in results:
        r = results["logging"]
        rows = [
            [f"call log {k}", _rps(v), _ms(v["latency_ms"], "p50"), _ms(v["latency_ms"], "p99")]
            for k, v in r.items()
            if isinstance(v, dict)
        ]
        out += [
            f"5. Call log on vs off, non-streamed, 64 clients (cost of SQLite logging: {r['cost_pct']:.1f}% req/s)",
            _table(["", "req/s", "p50 ms", "p99 ms"], rows),
            "",
        ]
    if memory:
        rows = [[m["when"], m["process"], f"{m['rss_mib']:.1f}", f"{m['hwm_mib']:.1f}"] for m in memory]
        out += ["6. Gateway memory (MiB)", _table(["after", "process", "VmRSS", "VmHWM"], rows), ""]
    if "calls100k" in results:
        r = results["calls100k"]
        verdict = "OK" if r["ok"] else "FAILED"
        mem = r["memory"]
        picks = [mem[0], mem[len(mem) // 2], mem[-1]] if len(mem) > 2 else mem
        rss = ", ".join(f"t={m['t']}s {m['rss_mib']:.1f}" for m in picks)
        out += [
            f"7. {r['expected']:,} calls logged: sent {r['sent']:,}, api_logs rows {r['rows']:,} -> {verdict} "
            f"(spool lines left {r.get('spool_lines', 0):,}, exit code {r['exit_code']}, "
            f"{r['load']['rps']:,.0f} req/s, every 10th streamed)",
            f"   gateway RSS MiB over the run: {rss}; peak (VmHWM) {max(m['hwm_mib'] for m in mem):.1f}",
            "",
        ]
    if "stacks" in results:
        r = results["stacks"]
        rows = [
            [
                name,
                _rps(v),
                _ms(v["latency_ms"], "p50"),
                _ms(v["latency_ms"], "p99"),
                _ms(v["one_client"]["latency_ms"], "p50") if "one_client" in v else "-",
                str(v["errors"]),
            ]
            for name, v in r.items()
        ]
        out += [
            "8. HTTP stack: bare Starlette passthrough, non-streamed (http1 is the gateway's own client)",
            _table(["client", "req/s (64)", "p50 ms (64)", "p99 ms (64)", "p50 ms (1 client)", "errors"], rows),
            "",
        ]
    if "sse_stacks" in results:
        rows = [
            [
                name,
                _ms(v["one_client"]["ttft_ms"], "p50"),
                _ms(v["one_client"]["ttft_ms"], "p99"),
                _ms(v["one_client"]["latency_ms"], "p50"),
                _rps(v),
                _ms(v["latency_ms"], "p50"),
                _ms(v["latency_ms"], "p99"),
                str(v["errors"] + v["one_client"]["errors"]),
            ]
            for name, v in results["sse_stacks"].items()
        ]
        header = ["relay", "TTFT p50 (1)", "TTFT p99 (1)", "total p50 (1)", "req/s (64)", "p50 ms (64)", "p99 ms (64)"]
        out += [
            "8b. SSE stack: bare Starlette relay of a streamed reply over http1 (raw is the gateway's style), ms",
            _table([*header, "errors"], rows),
            "",
        ]
    for key, backend in (("stats1m", "SQLite"), ("stats1m_postgresql", "PostgreSQL")):
        if key not in results:
            continue
        r = results[key]
        rows = [
            [name, f"{v['ms_median']:.1f}", f"{v['ms_max']:.1f}", str(v["groups"])]
            for name, v in r.items()
            if isinstance(v, dict)
        ]
        out += [
            f"9. GET /stats over {r['rows']:,} logged calls ({backend}; table built in {r['build_s']} s)",
            _table(["query", "median ms", "max ms", "groups"], rows),
            "",
        ]
    verdicts = targets(results)
    if verdicts:
        out += [
            "Targets (one worker, routing + SQLite call log on)",
            _table(["target", "measured", "met"], verdicts),
            "",
        ]
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    if "throughput64" in results:
        rps = results["throughput64"]["gateway"]["rps"]
        rows.append(
            [
                f">= {TARGET_RPS:,.0f} req/s non-streamed, 64 clients",
                f"{rps:,.0f} req/s",
                "yes" if rps >= TARGET_RPS else f"NO ({rps / TARGET_RPS:.0%} of target)",
            ]
        )
    if "latency1" in results:
        added = results["latency1"]["added_ms"]["p50"]
        rows.append(
            [
                f"added latency p50 < {TARGET_ADDED_P50_MS} ms, 1 client",
                f"{added:.3f} ms",
                "yes" if added < TARGET_ADDED_P50_MS else f"NO (+{added - TARGET_ADDED_P50_MS:.3f} ms over)",
            ]
        )
    if "stream1" in results:
        added = results["stream1"]["added_ttft_ms"]["p50"]
        rows.append(
            [
                f"added TTFT p50 < {TARGET_TTFT_P50_MS} ms, 1 client",
                f"{added:.3f} ms",
                "yes" if added < TARGET_TTFT_P50_MS else f"NO (+{added - TARGET_TTFT_P50_MS:.3f} ms over)",
            ]
        )
    return rows
