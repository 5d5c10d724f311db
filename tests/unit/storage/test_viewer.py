"""The call-log viewer's escaping of client-chosen text."""

from __future__ import annotations

from gateway.calllog.viewer import _cell, _short, printable


def test_control_characters_are_escaped() -> None:
    assert printable("\x1b]0;title\x07\x1b[2J") == "\\x1b]0;title\\x07\\x1b[2J"
    assert printable("\x9b2J\x7f\x00") == "\\x9b2J\\x7f\\x00"
    assert printable("abc\u202edef\u2066") == "abc\\u202edef\\u2066"
    assert printable("naïve — 日本語 ✓") == "naïve — 日本語 ✓", "printable text is left alone"


def test_every_cell_is_escaped() -> None:
    assert _cell("provider", "\x1bc") == "\\x1bc"
    assert _cell("model_id", "\x1b[2J") == "\\x1b[2J"
    assert _cell("deployment", b"\x1b[2J") == "\\x1b[2J"
    assert _short({"content": "\x1b[2J"}, 100) == '{"content":"\\u001b[2J"}'  # JSON's own escape
    assert _short("line\none\ttab", 100) == "line one tab"
