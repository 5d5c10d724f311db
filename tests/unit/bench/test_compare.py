"""bench.compare's pure parts: the realistic request it sends every target, the table, the feature switches."""

from __future__ import annotations

import orjson

from bench import compare
from bench.load import realistic_body
from bench.upstream import canned_responses
from gateway.settings import Settings


def test_realistic_request_is_a_valid_chat_call_with_history() -> None:
    body = orjson.loads(realistic_body("bench-model", stream=False))
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["model"] == "bench-model" and "stream" not in body
    streamed = orjson.loads(realistic_body("bench-model", stream=True))
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}
    assert 1000 < len(realistic_body("bench-model", stream=False)) < 3000


def test_realistic_upstream_reply_carries_usage() -> None:
    json_resp = canned_responses(16, realistic=True)[0]
    head, _, body = json_resp.partition(b"\r\n\r\n")
    assert int(head.split(b"content-length: ")[1]) == len(body)
    usage = orjson.loads(body)["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == usage["total_tokens"]


def test_every_feature_switch_is_a_real_setting() -> None:
    on = Settings.from_env(dict(compare.ALL_ON))
    assert [name for name, _ in on.access.client_keys] == ["bench"]
    assert on.client_rpm > 0 and on.client_tpm > 0 and on.metrics_enabled
    limits_off = Settings.from_env({**compare.ALL_ON, **compare.FEATURES_OFF["limits off"][1]})
    assert limits_off.client_rpm == limits_off.client_tpm == limits_off.max_streams_per_client == 0
    assert not Settings.from_env({**compare.ALL_ON, **compare.FEATURES_OFF["metrics off"][1]}).metrics_enabled
    access_off = {k: v for k, v in {**compare.ALL_ON, **compare.FEATURES_OFF["access off"][1]}.items() if v}
    assert Settings.from_env(access_off).access.client_keys == ()


def test_table_names_skipped_peers_and_the_worker_ratio() -> None:
    rows = [
        {"target": "gateway, everything on", "rps_64": 1000.0, "cpu_ms": 0.5, "p50_ms": 0.6, "added_p50_ms": 0.4},
        {"target": "TensorZero 2026.6.0 (Rust)", "skipped": "setup.sh exited 1"},
        {"target": "gateway everything on, 1 worker, UNPINNED", "rps_64": 1000.0},
        {"target": "gateway everything on, 2 workers, UNPINNED", "rps_64": 1900.0},
    ]
    meta = {"date": "d", "load_generator": "wrk", "duration": 6.0, "direct_p50_ms": 0.07, "direct_ttft_ms": 0.06}
    table = compare.render(rows, {**meta, "loadavg": "0.1 0.1 0.1"})
    assert "| gateway, everything on | 1,000 | 0.500 | 0.600 | 0.400 | - |" in table
    assert "| TensorZero 2026.6.0 (Rust) | skipped: setup.sh exited 1 |" in table
    assert "Two workers / one worker (unpinned): 1.90x." in table
