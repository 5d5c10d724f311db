"""Show the call log: recent requests, usage per model and provider, recent errors, one sample conversation.

Reads the same settings as the gateway (environment over `.env`): the SQLite file by default, or PostgreSQL at
DATABASE_URL when USE_SQLITE_LOG=false:

    gateway logs [--db PATH] [--limit N] [--hours H]      (or: python scripts/view_logs.py ...)

Every value printed comes from clients (model names, errors, prompts) and is shown through `printable`: control
characters (C0, DEL, C1, bidi overrides) are written as `\\xNN` / `\\uNNNN` escapes, so no row can move the
cursor, clear the screen, retitle the terminal or reorder the text around it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import desc, inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from tabulate import tabulate

from gateway.calllog.schema import api_logs
from gateway.calllog.settings import StorageSettings
from gateway.calllog.stats import query_stats

_T = api_logs.c
_RECENT: tuple[str, ...] = ("request_id", "timestamp", "model_id", "provider", "deployment", "stream", "status_code")
_RECENT += ("prompt_tokens", "completion_tokens", "total_tokens", "latency_ms", "ttft_ms", "cost_usd")
_STATS_NEEDS = {"timestamp", "model_id", "provider", "status_code", "latency_ms", "ttft_ms", "cost_usd"}
# C0 (ESC starts every terminal escape sequence), DEL, C1 (CSI, OSC as single code points), bidi controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def main(argv: list[str] | None, prog: str, env: Mapping[str, str], root: Path) -> int:
    """Parse `argv` and print the tables; `env` and `root` are the gateway's (gateway.settings.load_env, ROOT)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, help="SQLite file to read (default: the gateway's configured log)")
    parser.add_argument("--limit", type=int, default=10, help="rows in the recent-requests and errors tables")
    parser.add_argument("--hours", type=float, default=24.0, help="window for the usage table (default 24)")
    args = parser.parse_args(argv)

    try:
        settings = StorageSettings.from_env(env, root)
    except ValueError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if args.db is not None:
        settings = StorageSettings(backend="sqlite", url=f"sqlite+aiosqlite:///{args.db}", sqlite_path=args.db)
    if settings.backend == "disabled":
        print("Call logging is disabled (USE_SQLITE_LOG=false and DATABASE_URL is not set).")
        return 1
    if settings.sqlite_path is not None and not settings.sqlite_path.is_file():
        print(f"No call log at {settings.sqlite_path}: start the gateway and send a request first.")
        return 1
    return asyncio.run(_show(settings, args.limit, args.hours))


async def _show(settings: StorageSettings, limit: int, hours: float) -> int:
    pool = {"pool_size": 1, "max_overflow": 0} if settings.backend == "postgresql" else {}
    engine = create_async_engine(settings.url, **pool)
    print(f"Call log: {settings.describe()}")
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(_columns)
            if not columns:
                print("No api_logs table yet: start the gateway and send a request first.")
                return 1
            await _recent(conn, columns, limit)
            await _usage(conn, columns, hours)
            await _errors(conn, columns, limit)
            await _sample(conn, columns)
    except Exception as exc:  # an operator tool: one clear line, never a traceback with a DSN in it
        detail = printable(str(exc).splitlines()[0][:200]) if str(exc) else ""
        print(f"Cannot read the call log ({type(exc).__name__}: {detail})", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0


def _columns(conn: Any) -> set[str]:
    inspector = inspect(conn)
    if not inspector.has_table("api_logs"):
        return set()
    return {c["name"] for c in inspector.get_columns("api_logs")}


async def _recent(conn: AsyncConnection, columns: set[str], limit: int) -> None:
    cols = [_T[c] for c in _RECENT if c in columns]
    rows = (await conn.execute(select(*cols).order_by(desc(_T.timestamp)).limit(limit))).mappings().all()
    _section(f"Recent {limit} requests")
    if not rows:
        print("No requests logged yet. Send one, e.g. curl http://127.0.0.1:8080/v1/chat/completions ...")
        return
    table = [{k: _cell(k, v) for k, v in row.items()} for row in rows]
    print(tabulate(table, headers="keys", tablefmt="simple"))


async def _usage(conn: AsyncConnection, columns: set[str], hours: float) -> None:
    _section(f"Usage over the last {hours:g} h, per model and provider")
    if not _STATS_NEEDS <= columns:
        print("This table predates the gateway's schema; start the gateway once to migrate it.")
        return
    stats = await query_stats(conn, datetime.now(UTC) - timedelta(hours=hours))
    if not stats:
        print("No requests in this window.")
        return
    requests = sum(s["requests"] for s in stats)
    ok = sum(s["successes"] for s in stats)
    tokens = sum(s["total_tokens"] for s in stats)
    cost = sum(s["cost_usd"] for s in stats)
    print(f"requests {requests}, success {100 * ok / requests:.1f}%, tokens {tokens}, cost ${cost:.4f}\n")
    headers = ["model", "provider", "reqs", "ok", "err", "prompt", "compl", "total", "cost $"]
    headers += ["lat avg", "lat p50", "lat p95", "ttft p50"]
    table = [[_cell(k, v) for k, v in row.items()] for row in stats]
    print(tabulate(table, headers=headers, tablefmt="simple"))


async def _errors(conn: AsyncConnection, columns: set[str], limit: int) -> None:
    cols = [_T[c] for c in ("request_id", "timestamp", "model_id", "provider", "status_code", "error") if c in columns]
    failed = or_(_T.error.is_not(None) & (_T.error != ""), _T.status_code != 200)
    query = select(*cols).where(failed).order_by(desc(_T.timestamp)).limit(limit)
    rows = (await conn.execute(query)).mappings().all()
    _section(f"Recent {limit} errors")
    if not rows:
        print("No errors.")
        return
    print(tabulate([{k: _cell(k, v) for k, v in row.items()} for row in rows], headers="keys", tablefmt="simple"))


async def _sample(conn: AsyncConnection, columns: set[str]) -> None:
    _section("Sample conversation (latest successful call with content)")
    query = (
        select(*(column for column in api_logs.c if column.name in columns))
        .where(_T.status_code == 200, _T.response.is_not(None), _T.prompt.is_not(None))
        .order_by(desc(_T.timestamp))
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        print("None stored (LOG_CONTENT=false, or no successful call yet).")
        return
    head = (_short(row[k], 80) for k in ("request_id", "model_id", "provider"))
    print("{}  {} via {}  at {}".format(*head, _cell("timestamp", row["timestamp"])))
    try:
        messages = orjson.loads(row["prompt"])
    except orjson.JSONDecodeError:
        messages = [{"role": "?", "content": row["prompt"]}]
    for message in messages if isinstance(messages, list) else [messages]:
        content = message.get("content") if isinstance(message, dict) else message
        role = message.get("role", "?") if isinstance(message, dict) else "?"
        print(f"  [{_short(role, 20)}] {_short(content, 100)}")
    print(f"  [response] {_short(row['response'], 200)}")
    tokens = {k: row.get(k) for k in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "total_tokens")}
    params = {k: row.get(k) for k in ("temperature", "top_p", "max_tokens", "seed")}
    print(f"  tokens {printable(str(tokens))}\n  params {printable(str(params))}")


def _section(title: str) -> None:
    print(f"\n== {title} ==")


def printable(text: str) -> str:
    """`text` with every control character escaped (`\\x1b`, `\\u202e`): safe to write to a terminal."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _cell(key: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if key == "model_id" and isinstance(value, str):
        return _short(value, 30)
    if key == "error" and isinstance(value, str):
        return _short(value, 60)
    if key == "cost_usd" and value is not None:
        return f"{float(value):.6f}"
    if isinstance(value, float):
        return round(value, 1)
    if isinstance(value, bytes | bytearray | memoryview):
        return printable(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, str):
        return printable(value)
    return value


def _short(value: Any, width: int) -> str:
    """One line of at most `width` characters: whitespace runs collapsed, control characters escaped."""
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    text = printable(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"
