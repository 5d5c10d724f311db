"""The shipped unit file passes `systemd-analyze verify` (paths pointed at this checkout)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.settings import ROOT

UNIT = ROOT / "infrastructure" / "systemd" / "hybrid_inference.service"


def test_unit_has_the_required_settings() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    service = parser["Service"]
    assert service["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert service["User"] != "root"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "true" and service["ProtectSystem"] == "strict"
    assert "var" in service["ReadWritePaths"] and service["PrivateTmp"] == "true"
    assert service["LimitNOFILE"] and service["EnvironmentFile"] and service["ExecReload"]
    assert "--workers" in service["ExecStart"] and "--port ${PORT}" in service["ExecStart"]
    assert service["Environment"].startswith("PORT=80")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("/opt/hybrid-inference", str(ROOT))
    text = text.replace("User=hybrid-inference", "User=root").replace("Group=hybrid-inference", "Group=root")
    unit = tmp_path / "hybrid_inference.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if "hybrid_inference.service" in line]
    assert result.returncode == 0 and not problems, result.stderr
