# agentrt: `make demo` runs the example agent, `make test` runs the suite.
# Both create .venv and install the package (with its dev extras) on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
DOCS_STAMP  := $(VENV)/.installed-docs

.PHONY: help install test test-fast lint typecheck check docs demo bench load soak clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentrt needs Python 3.11+, $(PYTHON) is " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install agentrt with its dev extras

# Workers for `make test` (pytest-xdist). Mostly CPU-bound, but its tests also wait on
# child processes and servers: on the 2-core machines it is timed on, 3 workers took
# 3:36-3:43 where 2 took 4:19-4:27 (quiet, 2026-12-04). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3

test: $(STAMP)  ## run the whole test suite (needs redis-server on 127.0.0.1:6379 for -m redis)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

test-fast: $(STAMP)  ## unit tests only (no HTTP server, Redis or child processes)
	$(PY) -m pytest -m "not integration and not redis"

lint: $(STAMP)  ## ruff
	$(VENV)/bin/ruff check agentrt tests examples bench docs

typecheck: $(STAMP)  ## mypy --strict on the package
	$(VENV)/bin/mypy

check: lint typecheck  ## lint and typecheck

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,docs]"
	@touch $(DOCS_STAMP)

# NO_MKDOCS_2_WARNING: silence mkdocs-material's banner about mkdocs 2 (not a warning of ours).
docs: $(DOCS_STAMP)  ## build the documentation site into site/ (mkdocs --strict: any warning fails)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

demo: $(STAMP)  ## run the shop example (offline on the fake server unless ANTHROPIC_API_KEY is set)
	$(PY) examples/shop.py

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## run every benchmark (with the peer frameworks) and write bench/RESULTS.md
	$(PY) bench/run.py

load: $(STAMP)  ## 500 concurrent runs against a fake API process: peak memory, loop lag
	$(PY) tests/reliability/load.py load

soak: $(STAMP)  ## 10 minutes at a steady rate: fails if memory or open sockets grow
	$(PY) tests/reliability/load.py soak --minutes 10

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .agentrt site
