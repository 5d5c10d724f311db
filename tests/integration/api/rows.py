"""Read a test gateway's call-log rows (its own SQLite file)."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.support.gateway import ThreadGateway


def rows(gw: ThreadGateway) -> list[dict[str, Any]]:
    conn = sqlite3.connect(str(gw.settings.storage.sqlite_path))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("select * from api_logs order by id")]
    finally:
        conn.close()


def row(gw: ThreadGateway, request_id: str) -> dict[str, Any]:
    matches = [r for r in rows(gw) if r["request_id"] == request_id]
    assert len(matches) == 1, f"expected one row for {request_id}, got {len(matches)}"
    return matches[0]
