"""A spool line that is not a row is moved aside to `*.bad`, counted as lost, and the call log keeps writing."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.integration.limits.test_resilience import chat, wait_until

GOOD = {"request_id": "gen-spooled-ok", "timestamp": "2025-01-01T00:00:00+00:00", "model_id": "m", "provider": "x"}
POISON = [
    {**GOOD, "request_id": "gen-poison-ts", "timestamp": 1735689600},  # the audit's line: a non-string timestamp
    {**GOOD, "request_id": "gen-poison-type", "model_id": {"not": "text"}},  # a value no driver can bind
    {**GOOD, "request_id": "gen-poison-int", "seed": 10**30},  # out of the column's range
]


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


def poisoned_spool(directory: Path) -> None:
    """What a crashed worker left behind: a good row between poisoned lines, and a torn last line."""
    directory.mkdir(parents=True)
    lines = [json.dumps(POISON[0]), json.dumps(GOOD), *map(json.dumps, POISON[1:]), '{"request_id": "gen-torn", "ti']
    (directory / f"calllog-{dead_pid()}.jsonl").write_text("\n".join(lines))


def logged(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("select request_id from api_logs")}


def rows_lost(url: str) -> float:
    match = re.search(r"^gateway_call_log_rows_lost(?:\{[^}]*\})? (\S+)$", httpx.get(f"{url}/metrics").text, re.M)
    return float(match.group(1)) if match else -1.0


def test_a_poisoned_spool_line_is_quarantined_and_the_log_keeps_writing(
    gateway_factory: GatewayFactory, upstreams, tmp_path: Path
) -> None:
    """Fluentd moves a chunk that fails with an unrecoverable error to its backup directory and carries on
    (Logstash: the dead letter queue); one bad line here must not stop every later replay either."""
    a, _ = upstreams
    spool = tmp_path / "spool"
    poisoned_spool(spool)
    gw = gateway_factory(models(route(a)), CALL_LOG_SPOOL_DIR=str(spool))  # replays at start-up
    served = chat(gw.url)
    assert served.status_code == 200
    db = Path(gw.settings.env["SQLITE_DB_PATH"])
    assert logged(db) == {"gen-spooled-ok", served.headers["x-request-id"]}, "the good row and the new call"
    assert not list(spool.glob("calllog-*.jsonl")), "nothing left to replay: the spool was emptied"
    [bad] = spool.glob("*.bad")
    quarantined = bad.read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in quarantined[:3]] == [p["request_id"] for p in POISON]
    assert quarantined[3].startswith('{"request_id": "gen-torn"') and len(quarantined) == 4
    assert bad.stat().st_mode & 0o777 == 0o600
    assert wait_until(lambda: rows_lost(gw.url) == 4), rows_lost(gw.url)
    assert chat(gw.url).status_code == 200 and len(logged(db)) == 3, "and later calls are written too"
