"""The call-log viewer never writes a client's control characters to the terminal."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from gateway.settings import ROOT
from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route

# retitle the terminal (OSC 0 ... BEL), clear it (CSI 2J), the same as a C1 CSI, DEL, and a bidi override
HOSTILE_MODEL = "\x1b]0;pwned\x07\x1b[2J\x9b2J\x7fevil\u202e"
HOSTILE_TEXT = "hello \x1b[31mred\x1b[0m \x1bc reset"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # all but \t and \n, which tables use


def test_the_viewer_escapes_control_characters_in_every_cell(gateway_factory: GatewayFactory, upstreams) -> None:
    """nginx writes access-log variables with characters below 32 or above 126 as \\xXX (log_format's default
    `escape`), and GNU ls quotes control characters in names on a terminal: the viewer escapes them the same way."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    hostile = httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": HOSTILE_MODEL, "messages": [{"role": "user", "content": "x"}]}
    )
    assert hostile.status_code == 404
    served = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": HOSTILE_TEXT}], "x_test": {"reply": HOSTILE_TEXT}},
    )
    assert served.status_code == 200
    db = Path(gw.settings.env["SQLITE_DB_PATH"])
    with sqlite3.connect(db) as conn:
        stored = [r[0] for r in conn.execute("select model_id from api_logs")]
    assert HOSTILE_MODEL in stored, "the row keeps what the client sent; only the display escapes it"
    result = subprocess.run(
        [sys.executable, "scripts/view_logs.py", "--limit", "5"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "SQLITE_DB_PATH": str(db)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert not RAW.search(out), repr(RAW.findall(out))
    assert "\\x1b]0;pwned\\x07" in out  # the model name, readable and inert
    assert "hello \\x1b[31mred" in out  # the sample conversation's prompt and response
