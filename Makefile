# isc — the interface to every routine task. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := $(CURDIR)/.tools
HATCH := $(TOOLS)/bin/hatch
# hatch keeps its environments inside the checkout, so `make clean` really cleans.
export HATCH_DATA_DIR := $(TOOLS)/hatch-data
export HATCH_CACHE_DIR := $(TOOLS)/hatch-cache
export PATH := $(TOOLS)/bin:$(PATH)
MATRIX := $(TOOLS)/bin/python scripts/run_matrix.py

.PHONY: help tools lint docs unit client-only integration integration-stock dist-check test build demo clean docs-api docs-serve bench bench-memory soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(HATCH): requirements-tools.txt
	@echo "==> bootstrapping tools into .tools/ (hatch, uv)"
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	@touch $(HATCH)

tools: $(HATCH) ## install the build tools into .tools/

lint: $(HATCH) ## ruff check, ruff format --check, mypy --strict
	@echo "==> lint: ruff check, ruff format --check, mypy --strict"
	$(HATCH) run lint:all

docs: $(HATCH) ## build the documentation site (warnings are errors) into site/ and check it
	@echo "==> docs: mkdocs build --strict (docs/ -> site/; a broken link or missing page fails), then scripts/check_site.py"
	$(HATCH) run docs:build

docs-serve: $(HATCH) ## serve the documentation on http://127.0.0.1:8000/, rebuilt on every change
	@echo "==> docs-serve: mkdocs serve (live reload; Ctrl-C stops it)"
	$(HATCH) run docs:serve

# The API pages are rendered from the docstrings by every `make docs` (mkdocstrings):
# there is nothing to regenerate. Kept as a no-op for branches and habits that still call it.
docs-api:
	@echo "==> docs-api: nothing to do: docs/api/ is rendered from the docstrings by make docs"

unit: $(HATCH) ## unit tests of every package on every Python (no broker)
	@echo "==> unit tests on every Python"
	$(MATRIX) unit

client-only: $(HATCH) ## prove isc-client installs and imports without gevent
	@echo "==> client-only environment (no gevent)"
	$(HATCH) run client-only:test

integration: $(HATCH) ## the integration suite, every Python (all codecs per run), on one throwaway RabbitMQ
	@echo "==> integration matrix: one env per Python, every codec, one throwaway RabbitMQ for all"
	$(MATRIX) integration

integration-stock: $(HATCH) ## the integration suite on stock pika (ISC_PIKA_FASTPATH=0), Python 3.11 x json
	@echo "==> integration on stock pika (no fast path): python 3.11 x json"
	$(MATRIX) stock

build: $(HATCH) ## build sdists and wheels of every distribution into dist/
	@echo "==> building every distribution into dist/"
	rm -rf dist
	$(HATCH) build --all
	@ls dist

dist-check: build ## install the built wheels in fresh venvs and check dependencies and the namespace
	@echo "==> checking the built wheels"
	$(TOOLS)/bin/python scripts/check_dist.py dist

# How many broker environments `make test` runs at once: the integration suite mostly waits
# (for node processes, brokers, replies), so two share two cores well.
JOBS ?= 2
test: lint docs unit client-only dist-check ## everything CI runs
	@echo "==> integration matrix and stock pika, on one throwaway RabbitMQ for both, $(JOBS) at a time"
	$(MATRIX) integration stock --jobs $(JOBS)
	@echo "==> make test: all green"

demo: $(HATCH) ## run the documented example (chapter 2: a node and a client) end to end
	@echo "==> demo: docs/examples/chapter2 (server.py + client.py) against RabbitMQ"
	$(HATCH) run +py=3.11 unit:python scripts/demo.py

FASTPATH ?= on
bench: $(HATCH) ## isc vs a raw-pika baseline on one throwaway RabbitMQ (FASTPATH=off: stock pika)
	@echo "==> bench: isc against raw pika, same broker, interleaved rounds (fast path $(FASTPATH))"
	$(HATCH) run bench:python benchmarks/run.py --rounds 5 --fastpath $(FASTPATH)
	@echo "==> bench: asyncio clients (isc AsyncClient, aio-pika RPC, FastStream) against raw pika"
	$(HATCH) run bench:python benchmarks/aio.py --rounds 5
	@echo "==> bench: event throughput per delivery mode (benchmarks/modes.py)"
	$(HATCH) run bench:python benchmarks/modes.py

soak: $(HATCH) ## 200,000 calls through one client and one node; prints both processes' memory
	@echo "==> soak: client and node memory over 200,000 calls (benchmarks/soak.py)"
	$(HATCH) run +py=3.11 +codec=json integration:python benchmarks/soak.py

CALLS ?= 1000000
bench-memory: $(HATCH) ## client RSS over CALLS sequential calls (default 1,000,000; about 40 min)
	@echo "==> bench-memory: client RSS over $(CALLS) sequential calls"
	$(HATCH) run bench:python benchmarks/memory.py --calls $(CALLS)

clean: ## remove tools, environments, build output and caches
	rm -rf $(TOOLS) dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
