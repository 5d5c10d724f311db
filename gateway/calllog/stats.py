"""Read queries over `api_logs`: usage per model and provider, and one call as an OpenRouter generation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Float, Select, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from gateway.calllog.schema import api_logs

_T = api_logs.c
_INT_KEYS = ("requests", "successes", "errors", "prompt_tokens", "completion_tokens", "total_tokens")


async def query_stats(
    conn: AsyncConnection, since: datetime, model: str | None = None, provider: str | None = None
) -> list[dict[str, Any]]:
    """Per (model_id, provider) since `since`: counts, tokens, cost, latency avg/p50/p95 and TTFT p50."""
    where = [_T.timestamp >= since]
    if model:
        where.append(_T.model_id == model)
    if provider:
        where.append(_T.provider == provider)
    if conn.dialect.name != "postgresql":
        if not (model or provider) and await _window_is_large(conn, since):
            where[0] = _unindexed(_T.timestamp) >= since
        return await _sqlite_stats(conn, where)
    result = await conn.execute(_postgres_stats(where))
    return [_plain(dict(row._mapping)) for row in result]


async def query_generation(conn: AsyncConnection, request_id: str) -> dict[str, Any] | None:
    """One call by request id, shaped like OpenRouter's `GET /api/v1/generation` data."""
    result = await conn.execute(select(api_logs).where(_T.request_id == request_id))
    row = result.first()
    return None if row is None else generation_from_row(dict(row._mapping))


def generation_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Map an `api_logs` row (from the table or not yet written) to the generation record."""
    latency = _float(row.get("latency_ms"))
    ttft = _float(row.get("ttft_ms"))
    finish = row.get("finish_reason") or None
    created: datetime = row["timestamp"]
    return {
        "id": row["request_id"],
        "model": row["model_id"],
        "provider_name": row["provider"],
        "deployment": row.get("deployment"),
        "streamed": bool(row.get("stream")),
        # 499 is the gateway's "client went away" status (nginx convention).
        "cancelled": row.get("status_code") == 499 or finish == "cancelled",
        "created_at": created.isoformat(),
        "latency": latency,
        "generation_time": latency - ttft if latency is not None and ttft is not None else latency,
        "finish_reason": finish,
        "tokens_prompt": row.get("prompt_tokens"),
        "tokens_completion": row.get("completion_tokens"),
        "native_tokens_reasoning": row.get("reasoning_tokens"),
        "native_tokens_cached": row.get("cached_tokens"),
        "total_cost": _float(row.get("cost_usd")),
        "provider_responses": orjson.loads(row.get("attempts") or "[]"),
        "status_code": row.get("status_code"),
        "error": row.get("error") or None,
        "fallback_used": bool(row.get("fallback_used")),
    }


def _sums() -> list[ColumnElement[Any]]:
    ok = case((_T.status_code == 200, 1), else_=0)
    return [
        _T.model_id,
        _T.provider,
        func.count().label("requests"),
        func.coalesce(func.sum(ok), 0).label("successes"),
        func.coalesce(func.sum(1 - ok), 0).label("errors"),
        func.coalesce(func.sum(_T.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(_T.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(_T.total_tokens), 0).label("total_tokens"),
        func.coalesce(func.sum(cast(_T.cost_usd, Float)), 0.0).label("cost_usd"),
        func.avg(_T.latency_ms).label("latency_avg_ms"),
    ]


def _postgres_stats(where: list[ColumnElement[bool]]) -> Select[Any]:
    return (
        select(
            *_sums(),
            func.percentile_cont(0.5).within_group(_T.latency_ms).label("latency_p50_ms"),
            func.percentile_cont(0.95).within_group(_T.latency_ms).label("latency_p95_ms"),
            func.percentile_cont(0.5).within_group(_T.ttft_ms).label("ttft_p50_ms"),
        )
        .where(*where)
        .group_by(_T.model_id, _T.provider)
        .order_by(func.count().desc(), _T.model_id, _T.provider)
    )


async def _window_is_large(conn: AsyncConnection, since: datetime) -> bool:
    """Whether the period holds more than an eighth of the table (SQLite): then one sequential scan beats an index
    lookup per row. Measured on 1,000,000 rows, 24 h of 48 h: 1.8 s through the timestamp index, 0.67 s scanning;
    1 h of 48 h: 62 ms through the index, 137 ms scanning. Counting the window reads the index only (~13 ms)."""
    window = await conn.scalar(select(func.count()).select_from(api_logs).where(_T.timestamp >= since))
    last = await conn.scalar(select(func.max(_T.id)))  # an upper bound on the row count, read from the rowid B-tree
    return bool(last) and int(window or 0) * 8 > int(last)


def _unindexed(column: Any) -> Any:
    """`+column`: the same value, but SQLite will not drive the query from an index on it."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


async def _sqlite_stats(conn: AsyncConnection, where: list[ColumnElement[bool]]) -> list[dict[str, Any]]:
    """Sums in one GROUP BY; each percentile is one index seek (ORDER BY ... LIMIT 2 OFFSET k).

    Measured on 1,000,000 rows: ROW_NUMBER() windows over the partitions took 11 s (SQLite sorts every row
    per window), while the seeks walk the covering indexes `ix_api_logs_sqlite_latency/_ttft` in 0.25 s.
    """
    # Unary + keeps SQLite from scanning the whole model_id index to skip the GROUP BY sort; the timestamp
    # range then drives the scan, which matters most for short windows on a big table.
    model_key, provider_key = _unindexed(_T.model_id), _unindexed(_T.provider)
    query = (
        select(
            *_sums(),
            func.count(_T.latency_ms).label("n_latency"),
            func.count(_T.ttft_ms).label("n_ttft"),
        )
        .where(*where)
        .group_by(model_key, provider_key)
        .order_by(func.count().desc(), _T.model_id, _T.provider)
    )
    rows = [dict(row._mapping) for row in await conn.execute(query)]
    for row in rows:
        group = [*where, _T.model_id == row["model_id"], _T.provider == row["provider"]]
        n_latency, n_ttft = int(row.pop("n_latency")), int(row.pop("n_ttft"))
        row["latency_p50_ms"] = await _seek_percentile(conn, group, _T.latency_ms, 0.5, n_latency)
        row["latency_p95_ms"] = await _seek_percentile(conn, group, _T.latency_ms, 0.95, n_latency)
        row["ttft_p50_ms"] = await _seek_percentile(conn, group, _T.ttft_ms, 0.5, n_ttft)
    return [_plain(row) for row in rows]


async def _seek_percentile(
    conn: AsyncConnection, group: list[ColumnElement[bool]], column: Any, p: float, n: int
) -> float | None:
    """percentile_cont(p): interpolate between ranks floor(1 + p(n-1)) and the next one, as PostgreSQL does."""
    if n == 0:
        return None
    pos = 1 + p * (n - 1)
    lo = int(pos)
    query = select(column).where(*group, column.is_not(None)).order_by(column).offset(lo - 1).limit(2)
    values = [float(v) for v in (await conn.execute(query)).scalars()]
    if not values:
        return None  # rows changed between the two queries
    high = values[1] if len(values) > 1 else values[0]
    return values[0] + (pos - lo) * (high - values[0])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    # PostgreSQL returns Decimal for SUM(bigint) and for a legacy DECIMAL cost_usd; JSON wants int/float.
    for key, value in row.items():
        if key in _INT_KEYS:
            row[key] = int(value or 0)
        elif isinstance(value, Decimal | float):
            row[key] = round(float(value), 6 if key == "cost_usd" else 3)
    return row


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
