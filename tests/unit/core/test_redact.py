"""The one secret-masking helper every adapter and the call log use."""

from __future__ import annotations

import orjson
import pytest

from adapters.beacon import RunPodAdapter
from adapters.kinds import KINDS
from adapters.openai_compat import OpenAIAdapter
from adapters.redact import one_line, redact


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("Incorrect API key provided: sk-proj-abcdefgh12345678.", "abcdefgh1234"),
        ("Authorization: Bearer tok.en-value", "tok.en-value"),
        ("auth failed for Bearer tok.en-value", "tok.en-value"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("GET /v1/models?key=AIzaSyA1234567890abcdefghij&alt=json", "AIzaSyA1234567890"),
        ('{"api_key": "hunter2hunter2"}', "hunter2hunter2"),
        ("access_token=abc123def&x=1", "abc123def"),
        ("x-api-key: plain-but-named", "plain-but-named"),
        ("token 0123456789abcdef0123456789abcdef rejected", "0123456789abcdef0123456789abcdef"),
        ("sig Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg== bad", "Zm9vYmFyYmF6cXV4MTIz"),
        ("rate limited, rpa_ABCDEFGH12345678 over quota", "ABCDEFGH1234"),
    ],
)
def test_key_shaped_text_is_masked(text: str, leaked: str) -> None:
    masked = redact(text)
    assert leaked not in masked and "***" in masked


def test_ordinary_text_is_kept() -> None:
    for text in ("model `m` does not exist", "monkey business: ok", "upstream returned HTTP 502", "x" * 60):
        assert redact(text) == text


def test_known_secrets_are_masked_even_when_cut() -> None:
    key = "correct-horse-battery-staple"
    assert redact(f"bad credential {key} for you", [key, None, "k"]) == "bad credential *** for you"
    assert redact(f"bad credential {key[:9]}", [key]) == "bad credential ***"  # truncated text ends in part of it
    assert redact("a k in text", ["k"]) == "a k in text"  # too short to be a real secret


def test_one_line_masks_before_cutting() -> None:
    text = "x " * 140 + "sk-abcdefgh12345678"
    assert "sk-abc" not in one_line(text, 288) and len(one_line(text, 288)) <= 288
    assert one_line("bad\n  field") == "bad field"


def test_adapters_share_the_masking() -> None:
    body = orjson.dumps({"error": {"message": "Incorrect API key provided: sk-live-abcdefgh12345678"}})
    assert OpenAIAdapter(KINDS["openai"]).error_message(401, body) == "Incorrect API key provided: ***"
    assert RunPodAdapter().error_message(401, body) == "Incorrect API key provided: ***"
    event = OpenAIAdapter(KINDS["openai"]).parse_event(b'{"error": {"message": "Bearer abc.def"}}')
    assert event.error == "Bearer ***"


def test_any_run_of_eight_characters_of_a_known_secret_is_masked() -> None:
    key = "sk-proj-Zq4LmN8pQr2sT6vX9yB1cD7e"
    for fragment in (key[-12:], key[8:16], key[10:30], key[:8]):
        masked = redact(f"the key ...{fragment}... was revoked", [key])
        assert fragment not in masked and masked == "the key ...***... was revoked"
    assert redact(f"ends in {key[-12:]}, starts {key[3:11]}.", [key]) == "ends in ***, starts ***."
    assert redact(f"{key[2:10]}{key[20:28]} joined", [key]) == "*** joined"  # adjacent fragments: one mask
    assert redact(f"seven {key[12:19]} is too short", [key]) == f"seven {key[12:19]} is too short"
    assert redact("model `m` does not exist", [key]) == "model `m` does not exist"
