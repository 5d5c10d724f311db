"""With logging disabled, the call log is a silent no-op that says so once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from gateway.calllog.record import CallRecord
from gateway.calllog.settings import StorageSettings
from gateway.calllog.writer import build_call_log


async def test_disabled_log_is_a_no_op(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = build_call_log(StorageSettings.from_env({"USE_SQLITE_LOG": "false"}, tmp_path))
    caplog.set_level(logging.INFO, logger="gateway.calllog")
    await log.start()
    await log.write(CallRecord("gen-1", 0.0, "m", "p", "d", False, 200, 1.0))
    await log.flush()
    assert (log.enabled, log.backend) == (False, "disabled")
    assert await log.stats(24, None, None) == []
    assert await log.generation("gen-1") is None
    assert log.counters()["rows_written"] == 0
    await log.close()
    assert "disabled" in caplog.text
    assert not [path.name for path in os.scandir(tmp_path)]  # no database file, no spool
