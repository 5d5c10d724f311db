#!/usr/bin/env bash
# TensorZero's gateway, as the only package that ships it: the `tensorzero` PyPI wheel, whose native
# module embeds the Rust gateway and can serve its HTTP API in-process (serve.py). Installs into
# ${PEERS_CACHE:-~/.cache/gateway-peers}/tensorzero/: venv/ (pinned in requirements.txt) and bindport.so (bindport.c, built with cc:
# pins the embedded gateway's random port to the harness's). Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

DIR="${PEERS_CACHE:-$HOME/.cache/gateway-peers}/tensorzero"
PY="${PYTHON:-python3}"
mkdir -p "$DIR"
[ -x "$DIR/venv/bin/python" ] || "$PY" -m venv "$DIR/venv"
"$DIR/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
if [ ! -f "$DIR/bindport.so" ] || [ "$HERE/bindport.c" -nt "$DIR/bindport.so" ]; then
  command -v cc >/dev/null || { echo "[tensorzero] no C compiler (apt-get install gcc libc6-dev)" >&2; exit 1; }
  cc -O2 -shared -fPIC -o "$DIR/bindport.so" "$HERE/bindport.c" -ldl
fi
echo "[tensorzero] $("$DIR/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("tensorzero"))')" \
     "(venv: $DIR/venv, shim: $DIR/bindport.so)"
