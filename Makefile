# Stockpot — every entry point a person or CI uses. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXTRAS := operator,local,train,deepspeed,serve,eval,dev
# torch==2.13.0 is a CPU wheel on disk; the constraints pin it so nothing pulls a multi-GB CUDA build.
PIP_INSTALL := $(PIP) install --disable-pip-version-check -q -c constraints.txt $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
PYTEST_ARGS ?=

.PHONY: help setup system-deps lint format crds chart test test-unit test-integration test-runtime e2e-cluster demo bench bench-train bench-trl bench-operator clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip setuptools wheel
	$(PIP_INSTALL) -e '.[$(EXTRAS)]'
	touch $@

system-deps: ## Debian packages the local stack uses (Prometheus; tcmalloc, the runtime's allocator)
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && /sbin/ldconfig -p | grep -q libtcmalloc_minimal.so.4 || { \
	  echo "installing Debian's prometheus and libtcmalloc-minimal4 (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus libtcmalloc-minimal4 >/dev/null; }

setup: $(VENV)/.installed system-deps ## create .venv and install everything the tests and the demo need
	$(PY) -m stockpot_local.tools kubectl helm

format: $(VENV)/.installed ## rewrite code in the project's format
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lint: $(VENV)/.installed ## ruff, mypy, import contracts, generated files up to date
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy operator/stockpot_operator runtime/stockpot_runtime local/stockpot_local
	$(VENV)/bin/lint-imports
	$(PY) -m stockpot_operator crds --check --out crds --reference docs/api-reference.md
	$(PY) -m stockpot_operator crds --check --out charts/stockpot/crds

crds: $(VENV)/.installed ## regenerate crds/*.yaml (and the chart's copy) from the API models
	$(PY) -m stockpot_operator crds --out crds --reference docs/api-reference.md
	$(PY) -m stockpot_operator crds --out charts/stockpot/crds

chart: setup ## lint and render the Helm chart with the real helm binary
	.tools/bin/helm lint charts/stockpot
	.tools/bin/helm template stockpot charts/stockpot >/dev/null

test: setup lint ## set up, lint and run every test
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-unit: $(VENV)/.installed ## only the fast unit tests
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

e2e-cluster: setup ## the cluster suites against a real cluster: make e2e-cluster KUBECONFIG=…
	@test -n "$${KUBECONFIG:-}" || { echo "set KUBECONFIG to a real cluster's kubeconfig"; exit 2; }
	STOCKPOT_E2E_CLUSTER=1 $(VENV)/bin/pytest -m "integration or e2e" tests/integration tests/e2e $(PYTEST_ARGS)

demo: setup ## bring up the local stack and run the main job on it
	$(PY) -m stockpot_local.demo

bench: setup ## benchmarks; results go to docs/benchmarks.md
	$(PY) bench/apiserver.py
	$(PY) bench/local_cluster.py

# The soup-cli peer gets its own venv (its dependencies are not ours); torch stays pinned to the CPU wheel.
SOUP_VENV := .bench/soup
$(SOUP_VENV)/bin/soup:
	$(PYTHON) -m venv $(SOUP_VENV)
	printf 'torch==2.13.0\n' > $(SOUP_VENV)/constraints.txt
	$(SOUP_VENV)/bin/pip install --disable-pip-version-check -q -c $(SOUP_VENV)/constraints.txt \
		$(if $(wildcard /opt/wheels),--find-links /opt/wheels) "soup-cli[train]==0.77.0"

bench-train: setup $(SOUP_VENV)/bin/soup ## our runtime vs TRL SFTTrainer vs soup-cli; results go to docs/benchmarks.md
	$(PY) bench/train.py --write docs/benchmarks.md

bench-trl: setup $(SOUP_VENV)/bin/soup ## where plain TRL 1.16's SFT time goes, against TRL 0.29 (prints phase tables)
	$(PY) bench/trl_profile.py --compare --soup

bench-operator: setup ## FineTune controller: FineTunes → Jobs throughput vs the raw create rate, operator RSS
	$(PY) bench/operator.py --write docs/benchmarks.md

clean: ## remove the venv, tools and local-cluster state
	rm -rf $(VENV) .tools .local-cluster .pytest_cache .mypy_cache .ruff_cache
