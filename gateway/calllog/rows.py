"""Mapping between `CallRecord`, `api_logs` rows and spool-file lines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Boolean, Double, Integer

from gateway.calllog.record import CallRecord
from gateway.calllog.schema import api_logs

Row = dict[str, Any]

_INT64 = 2**63 - 1
_INT32 = 2**31 - 1


def record_to_row(record: CallRecord, *, log_content: bool) -> Row:
    """One `api_logs` row (without `id`) for a record; content is dropped when `log_content` is off."""
    return {
        "request_id": _text(record.request_id),
        "timestamp": datetime.fromtimestamp(record.started_at, tz=UTC),
        "model_id": _text(record.model_id),
        "provider": _text(record.provider),
        "deployment": _text(record.deployment),
        "endpoint": _text(record.endpoint),
        "stream": bool(record.stream),
        "status_code": _int(record.status_code, _INT32),
        "error": _text(record.error) or None,
        "latency_ms": float(record.latency_ms),
        "ttft_ms": None if record.ttft_ms is None else float(record.ttft_ms),
        "prompt_tokens": _int(record.prompt_tokens, _INT32),
        "completion_tokens": _int(record.completion_tokens, _INT32),
        "reasoning_tokens": _int(record.reasoning_tokens, _INT32),
        "cached_tokens": _int(record.cached_tokens, _INT32),
        "total_tokens": _int(record.total_tokens, _INT32),
        "cost_usd": float(record.cost_usd),
        "finish_reason": _text(record.finish_reason) or None,
        "attempts": _json([a.as_dict() for a in record.attempts]),
        "fallback_used": bool(record.fallback_used),
        "temperature": record.temperature,
        "top_p": record.top_p,
        "max_tokens": _int(record.max_tokens, _INT64),
        "seed": _int(record.seed, _INT64),
        "user_id": _text(record.user_id) or None,
        "session_id": _text(record.session_id) or None,
        "api_key_name": _text(record.api_key_name) or None,
        "client_ip": _text(record.client_ip) or None,
        "prompt": _text(record.prompt) if log_content and record.prompt is not None else None,
        "response": _text(record.response) if log_content and record.response is not None else None,
        "metadata": _json(record.metadata),
        "routing_reason": _text(record.routing_reason) or None,
    }


def row_to_line(row: Row) -> bytes:
    """One spool-file line (JSON, newline-terminated)."""
    data = dict(row)
    data["timestamp"] = row["timestamp"].isoformat()
    return orjson.dumps(data) + b"\n"


def line_to_row(line: bytes) -> Row:
    """Inverse of `row_to_line`; raises ValueError on a torn or foreign line, or one whose values could not be
    inserted as they stand (a wrong type, an integer out of its column's range). Unknown keys are dropped."""
    data = orjson.loads(line)  # orjson.JSONDecodeError is a ValueError
    if not isinstance(data, dict) or not isinstance(data.get("request_id"), str):
        raise ValueError("not a call-log row")
    stamp = data.get("timestamp")
    if not isinstance(stamp, str):
        raise ValueError(f"timestamp: expected an ISO 8601 string, got {type(stamp).__name__}")
    row: Row = {"timestamp": datetime.fromisoformat(stamp)}
    for name, value in data.items():
        check = _CHECKS.get(name)
        if check is not None:
            row[name] = None if value is None else check(name, value)
    return row


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
    return _text(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected a boolean, got {type(value).__name__}")
    return value


def _check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value)


def _checks() -> dict[str, Callable[[str, Any], Any]]:
    """A type check per `api_logs` column, read from the schema so the two cannot drift apart."""

    def integer(limit: int) -> Callable[[str, Any], int]:
        def check(name: str, value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or not -limit - 1 <= value <= limit:
                raise ValueError(f"{name}: expected an integer within +-{limit}, got {value!r:.40}")
            return value

        return check

    checks: dict[str, Callable[[str, Any], Any]] = {}
    for column in api_logs.columns:
        kind = column.type
        if column.name in ("id", "timestamp"):
            continue
        if isinstance(kind, Boolean):
            checks[column.name] = _check_bool
        elif isinstance(kind, BigInteger):
            checks[column.name] = integer(_INT64)
        elif isinstance(kind, Integer):
            checks[column.name] = integer(_INT32)
        elif isinstance(kind, Double):
            checks[column.name] = _check_float
        else:
            checks[column.name] = _check_text
    return checks


def _text(value: str | None) -> str:
    # PostgreSQL text cannot hold NUL; a client-supplied prompt with one would poison the whole batch.
    if not value:
        return ""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _int(value: int | None, limit: int) -> int | None:
    # Out-of-range client values (a 20-digit seed) would fail the insert; the row matters more than the value.
    if value is None or not -limit - 1 <= value <= limit:
        return None
    return int(value)


def _json(value: Any) -> str:
    return _text(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode())


_CHECKS = _checks()
