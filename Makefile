# Two commands matter: `make run` starts the gateway, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8080

.PHONY: install run test check bench bench-unpinned bench-routing chaos soak services clean

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

install: $(VENV)/.installed

run: install
	PORT=$(PORT) $(VENV)/bin/gateway serve

services:
	@bash scripts/ensure_services.sh

test: install services
	$(PY) -m pytest

check: install
	$(VENV)/bin/ruff check gateway adapters routing tests scripts bench
	$(VENV)/bin/ruff format --check gateway adapters routing tests scripts bench
	$(VENV)/bin/mypy

# the gateway against its peers (TensorZero, vllm-router, bare Starlette), each pinned to one core, in one run
bench: install
	$(PY) -m bench.compare

# the older unpinned scenarios (latency, throughput, streaming, the call log's 100k rows, memory)
bench-unpinned: install
	$(PY) -m bench.run

bench-routing: install
	$(PY) -m bench.hybrid

# The fault matrix of issue 14 (a few minutes; needs redis-server and PostgreSQL's initdb/pg_ctl on PATH; it runs
# its own throwaway instances). CHAOS_ARGS e.g. `--root ../shared --only refuse,sigkill --write-results`.
chaos: install
	$(PY) -m bench.chaos $(CHAOS_ARGS)

# One million calls through two workers with the call log on (SOAK_ARGS e.g. `--calls 100000 --write-results`).
soak: install
	$(PY) -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
