#!/usr/bin/env python3
"""Run TensorZero's HTTP gateway (the Rust gateway embedded in the `tensorzero` PyPI wheel) on 127.0.0.1:PORT.

The wheel has no standalone gateway binary, but `tensorzero._start_http_gateway` (what the deprecated
`patch_openai_client` uses) serves TensorZero's HTTP API, including the OpenAI-compatible
`/openai/v1/chat/completions`, from Rust threads inside this process. It always binds 127.0.0.1:0, so the
LD_PRELOAD shim `<PEERS_CACHE>/tensorzero/bindport.so` (bindport.c) turns that one bind into PORT; this script
re-executes itself with the shim, starts the gateway, checks the port, and then sleeps until SIGTERM.

  serve.py --config tensorzero/tensorzero.toml --port 18083
"""

import argparse
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("PEERS_CACHE", os.path.expanduser("~/.cache/gateway-peers"))
SHIM = os.path.join(CACHE, "tensorzero", "bindport.so")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=os.path.join(HERE, "tensorzero.toml"))
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    if os.environ.get("BIND_PORT_ZERO_TO") != str(a.port):
        if not os.path.exists(SHIM):
            sys.exit(f"{SHIM} missing: run tensorzero/setup.sh first")
        env = dict(
            os.environ,
            BIND_PORT_ZERO_TO=str(a.port),
            LD_PRELOAD=" ".join(x for x in (SHIM, os.environ.get("LD_PRELOAD")) if x),
        )
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    import tensorzero

    gw = tensorzero._start_http_gateway(
        config_file=a.config, clickhouse_url=None, postgres_url=None, valkey_url=None, async_setup=False
    )
    want = f"http://127.0.0.1:{a.port}/"
    if not gw.base_url.startswith(want):
        sys.exit(f"gateway bound {gw.base_url}, not {want} (bindport.so not effective?)")
    print(
        f"tensorzero {tensorzero.__version__ if hasattr(tensorzero, '__version__') else ''} "
        f"HTTP gateway at {gw.base_url}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: (gw.close(), os._exit(0)))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
