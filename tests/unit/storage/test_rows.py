"""Record-to-row mapping and the spool line format."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from gateway.calllog.record import AttemptRecord, CallRecord
from gateway.calllog.rows import line_to_row, record_to_row, row_to_line


def _record(**overrides: object) -> CallRecord:
    values: dict[str, object] = {
        "request_id": "gen-1",
        "started_at": 1_700_000_000.25,
        "model_id": "m",
        "provider": "local",
        "deployment": "d",
        "stream": False,
        "status_code": 200,
        "latency_ms": 12.5,
        "prompt": "[]",
        "response": "ok",
        "attempts": (AttemptRecord("d", "local", "ok", 200, 12.0),),
        "metadata": {"k": 1},
    }
    values.update(overrides)
    return CallRecord(**values)  # type: ignore[arg-type]


def test_row_fields() -> None:
    row = record_to_row(_record(), log_content=True)
    assert row["timestamp"] == datetime.fromtimestamp(1_700_000_000.25, tz=UTC)
    assert orjson.loads(row["attempts"]) == [
        {"deployment": "d", "provider": "local", "outcome": "ok", "status_code": 200, "duration_ms": 12.0, "error": ""}
    ]
    assert orjson.loads(row["metadata"]) == {"k": 1}
    assert (row["prompt"], row["response"]) == ("[]", "ok")
    assert row["error"] is None and row["finish_reason"] is None
    assert "id" not in row


def test_content_off_drops_prompt_and_response() -> None:
    row = record_to_row(_record(), log_content=False)
    assert row["prompt"] is None and row["response"] is None


def test_values_that_would_poison_a_batch_are_neutralised() -> None:
    row = record_to_row(_record(prompt="a\x00b", seed=10**30, max_tokens=-(10**20)), log_content=True)
    assert row["prompt"] == "a\ufffdb"
    assert row["seed"] is None and row["max_tokens"] is None


def test_metadata_with_odd_values_still_serialises() -> None:
    row = record_to_row(_record(metadata={1: object()}), log_content=True)
    assert list(orjson.loads(row["metadata"])) == ["1"]


def test_spool_line_round_trip() -> None:
    row = record_to_row(_record(ttft_ms=3.5, temperature=0.2), log_content=True)
    line = row_to_line(row)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line_to_row(line) == row


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"timestamp": 1735689600}, "timestamp"),
        ({"timestamp": "yesterday"}, "isoformat"),
        ({"model_id": {"not": "text"}}, "model_id"),
        ({"stream": "yes"}, "stream"),
        ({"status_code": 200.5}, "status_code"),
        ({"seed": 2**63}, "seed"),
        ({"status_code": True}, "status_code"),
        ({"latency_ms": "fast"}, "latency_ms"),
    ],
)
def test_a_spool_line_that_could_not_be_inserted_is_refused(change: dict[str, object], named: str) -> None:
    data = orjson.loads(row_to_line(record_to_row(_record(), log_content=True)))
    with pytest.raises(ValueError, match=named):
        line_to_row(orjson.dumps({**data, **change}))


def test_a_spool_line_keeps_only_known_columns_and_accepts_integral_floats() -> None:
    data = orjson.loads(row_to_line(record_to_row(_record(), log_content=True)))
    row = line_to_row(orjson.dumps({**data, "from_a_newer_version": 1, "latency_ms": 12}))
    assert "from_a_newer_version" not in row and row["latency_ms"] == 12.0
