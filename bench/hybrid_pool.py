"""`python -m bench.hybrid_pool PORTS_FILE`: the simulated hybrid pool of `make bench-routing`, in its own process.

Two vLLM twins (8 concurrent each; the rest queue; a prefix-cache hit makes prefill short) and one remote
deployment (no queue, a higher base latency). It writes `{"gpu-a": port, "gpu-b": port, "cloud": port}` to
PORTS_FILE and serves until SIGTERM. The twins' own `/metrics` carry their prefix-cache counters.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from tests.support.upstream import FakeUpstream
from tests.support.vllm_twin import TwinSpec, VllmTwin

MODEL = "bench-llama"
# Time-compressed: a token every 4 ms per sequence, a cold 2,000-character prefix 0.25 s to prefill, a cached one
# 0.03 s. The remote starts 0.45 s later than an idle GPU but never queues.
TWIN = {"capacity": 8, "prefill": 0.25, "cached_prefill": 0.03, "per_token": 0.004, "completion_tokens": 100_000}
CLOUD = {"delay_first_chunk": 0.45, "chunks": 12, "chunk_delay": 0.01}


def main(ports_file: str) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    spec = dict(TWIN, model=MODEL, kv_tokens=8_000, tokens_per_chunk=8, prefix_cache_entries=16)
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(VllmTwin.in_thread("gpu-a", TwinSpec(**spec)))  # type: ignore[arg-type]
        b = stack.enter_context(VllmTwin.in_thread("gpu-b", TwinSpec(**spec)))  # type: ignore[arg-type]
        cloud = stack.enter_context(FakeUpstream.in_thread("cloud", CLOUD, models=(MODEL,)))
        Path(ports_file).write_text(json.dumps({"gpu-a": a.port, "gpu-b": b.port, "cloud": cloud.port}))
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
