#!/usr/bin/env bash
# vllm-router (PyPI; a Rust load balancer for vLLM workers, fork of sglang-router) in its own venv:
# ${PEERS_CACHE:-~/.cache/gateway-peers}/vllm-router/venv. Idempotent (pip is a no-op when the pins are satisfied).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${PEERS_CACHE:-$HOME/.cache/gateway-peers}/vllm-router"
PY="${PYTHON:-python3}"
mkdir -p "$DIR"
[ -x "$DIR/venv/bin/python" ] || "$PY" -m venv "$DIR/venv"
"$DIR/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
echo "[vllm-router] $("$DIR/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("vllm-router"))')" \
     "(venv: $DIR/venv)"
