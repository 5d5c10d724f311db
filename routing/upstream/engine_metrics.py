"""Reading an inference engine's Prometheus exposition: which series each engine names what, for which model.

Parsing is prometheus_client's own text parser (`text_string_to_metric_families`, already a dependency), fed only
the lines of the few series we read: a vLLM `/metrics` page carries hundreds of histogram buckets, and parsing
all of them every second would cost the event loop milliseconds for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from routing.load import EngineSample

SIGNALS = ("running", "waiting", "kv_usage", "prefix_hits", "prefix_queries")


@dataclass(frozen=True, slots=True)
class EngineNames:
    """Sample names per signal, in order of preference (a newer name first, the one older servers used after)."""

    names: Mapping[str, tuple[str, ...]]

    def wanted(self) -> tuple[str, ...]:
        return tuple(n for names in self.names.values() for n in names)


ENGINE_NAMES: Mapping[str, EngineNames] = {
    "vllm": EngineNames(
        {
            "running": ("vllm:num_requests_running",),
            "waiting": ("vllm:num_requests_waiting",),
            "kv_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
            "prefix_hits": ("vllm:prefix_cache_hits_total",),
            "prefix_queries": ("vllm:prefix_cache_queries_total",),
        }
    ),
    "sglang": EngineNames(
        {
            "running": ("sglang:num_running_reqs",),
            "waiting": ("sglang:num_queue_reqs",),
            "kv_usage": ("sglang:token_usage",),
        }
    ),
    "llamacpp": EngineNames({"running": ("llamacpp:requests_processing",), "waiting": ("llamacpp:requests_deferred",)}),
}


def parse_signals(text: str, engine: str, model_name: str) -> dict[str, float]:
    """The signals found in an exposition page, summed over the series for `model_name` (or unlabelled ones).

    Series labelled with another `model_name` belong to another model on the same server and are left out;
    several series for the one model (vLLM's per-`engine` label with data parallelism) add up, except the KV use,
    which is their mean. Raises ValueError on a page the parser cannot read.
    """
    names = ENGINE_NAMES[engine]
    wanted = names.wanted()
    lines = [line for line in text.splitlines() if line.startswith(wanted) or line.startswith("# TYPE")]
    found: dict[str, list[float]] = {}
    for family in text_string_to_metric_families("\n".join(lines) + "\n"):
        for sample in family.samples:
            if sample.name not in wanted:
                continue
            labelled = sample.labels.get("model_name")
            if labelled is not None and labelled != model_name:
                continue
            found.setdefault(sample.name, []).append(float(sample.value))
    out: dict[str, float] = {}
    for signal, candidates in names.names.items():
        for name in candidates:
            values = found.get(name)
            if values:
                out[signal] = sum(values) / len(values) if signal == "kv_usage" else sum(values)
                break
    return out


def sample_of(signals: Mapping[str, float], at: float, in_flight_at: int) -> EngineSample:
    return EngineSample(
        at=at,
        in_flight_at=in_flight_at,
        running=signals.get("running"),
        waiting=signals.get("waiting"),
        kv_usage=signals.get("kv_usage"),
        prefix_hits=signals.get("prefix_hits"),
        prefix_queries=signals.get("prefix_queries"),
    )
