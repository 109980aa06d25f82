# Two commands matter:  `make lab`  (lab up + deploy)  and  `make test`  (every test).
# Everything runs from .venv, which this Makefile creates from pyproject.toml.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0

.PHONY: help
help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; \
	  else echo "error: $(PYTHON) cannot create virtualenvs: install python3-venv" >&2; exit 1; fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with the pinned controller toolchain

.PHONY: lab
lab: venv ## Bring the lab up and deploy the cluster to it
	@start=$$(date +%s); \
	python scripts/lab.py up && \
	python scripts/build_wheelhouse.py && \
	python scripts/init_secrets.py && \
	ansible-playbook playbooks/lab/git_server.yml && \
	ansible-playbook playbooks/lab/aws.yml && \
	python scripts/publish_dags.py && \
	ansible-playbook site.yml && \
	echo "make lab: lab up and cluster deployed in $$(( $$(date +%s) - start ))s"

.PHONY: dags
dags: venv ## Publish dags/ to the lab's git server (the cluster lists changes within about 5 s)
	python scripts/publish_dags.py

.PHONY: wheelhouse
wheelhouse: venv ## Download the wheels the Airflow hosts install into .lab/wheelhouse (make lab does this)
	python scripts/build_wheelhouse.py

.PHONY: lab-down
lab-down: venv ## Remove the lab's containers and network
	python scripts/lab.py down

.PHONY: lint
lint: venv ## ruff, mypy, yamllint, ansible-lint
	ruff check
	ruff format --check
	mypy
	yamllint --strict .
	ansible-lint

.PHONY: unit
unit: venv ## Unit tests (no lab needed)
	pytest tests/unit

.PHONY: molecule
molecule: venv ## Molecule scenarios, every role's and the multi-host ones, 2 at a time (logs: .lab/molecule/)
	python scripts/lab.py image  # build the base image here, with progress output
	python scripts/run_molecule.py --jobs 2

.PHONY: browser
browser: ## Install Debian's chromium and chromium-driver for the UI tests, if missing
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromium-driver for the UI tests"; \
	    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "error: the UI tests need chromium and chromium-driver" >&2; exit 1; fi; \
	fi

.PHONY: integration
integration: lab browser ## Deploy the lab, then test it from outside (pytest + testinfra, chromium)
	pytest -m lab --durations=10 tests/integration

.PHONY: test-fast
test-fast: lint unit ## Lint and unit tests, for the inner loop

.PHONY: bench
bench: lab ## Benchmark: 100 no-op mapped tasks on the lab (Celery), then on one LocalExecutor host
	python scripts/bench_mapped.py --tasks 100
	molecule test -s bench_local_executor

.PHONY: test
test: lint unit molecule integration ## Every test: lint, unit, molecule, lab integration

.PHONY: clean
clean: ## Remove the lab, .venv and .lab
	-[ -x $(BIN)/python ] && $(BIN)/python scripts/lab.py down
	rm -rf $(VENV) .lab
