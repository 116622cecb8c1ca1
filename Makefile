# yibao-bridge — the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# test processes of `make test`: each starts its own broker and database; most tests wait on them, not on the CPU
TEST_WORKERS ?= 2
# tools of the deploy tests that Debian does not package, built once from the Go module proxy and cached
TOOLS_DIR         ?= $(HOME)/.cache/yibao-bridge/tools
KUSTOMIZE_VERSION ?= v5.7.1

.PHONY: install demo test test-unit test-integration bench chaos sim stack clean readme deploy-tools

$(STAMP): pyproject.toml setup.py
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11+ is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install everything (idempotent)

demo: $(STAMP) ## run the bridge on the embedded default (Tansu broker, SQLite, simulator) with a generated day
	$(VENV)/bin/yibao demo

test: $(STAMP) ## the whole suite; starts a real Kafka (KRaft) and PostgreSQL itself when the machine has them
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not serial"
	$(PY) -m pytest -m serial

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration tests/e2e

bench: $(STAMP) ## speed and memory figures, written to bench/results/*.json
	$(PY) bench/run_all.py

CHAOS_VISITS ?= 10000
chaos: $(STAMP) ## the long chaos soak: workers killed, database and broker restarted, platform faults; then the audit
	$(VENV)/bin/yibao chaos --visits $(CHAOS_VISITS) --every 15 40 --script database:60 --script broker \
	  --timeout 10800 --out bench/results/chaos.json

sim: $(STAMP) ## the platform simulator on 127.0.0.1:7070 (admin :7071)
	$(VENV)/bin/yibao sim

stack: $(STAMP) ## a local Kafka + PostgreSQL for manual work; prints the exports
	$(VENV)/bin/yibao stack up --migrate

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

deploy-tools: ## kustomize for the deploy tests (go install, cached in TOOLS_DIR); promtool/prometheus: apt-get install prometheus
	@if [ "$$($(TOOLS_DIR)/bin/kustomize version 2>/dev/null)" != "$(KUSTOMIZE_VERSION)" ]; then \
	  command -v go >/dev/null 2>&1 || { echo "deploy-tools needs Go (it builds kustomize with go install)"; exit 1; }; \
	  echo "building kustomize $(KUSTOMIZE_VERSION) into $(TOOLS_DIR)/bin"; \
	  GOBIN=$(TOOLS_DIR)/bin GOTOOLCHAIN=local go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	fi

readme: $(STAMP) ## regenerate the README's settings and topics tables from the code
	$(PY) tools/update_readme.py
